// Entry of the scratch app: the seed's samples and the documented usage (copied from
// test/fixtures by scripts/kit-pack-test.sh) against the installed tarball.
import { createRoot } from "react-dom/client";
import { App } from "./app";

createRoot(document.getElementById("root")!).render(<App />);
