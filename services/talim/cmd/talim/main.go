// Command talim is the developer binary: `talim dev` runs the whole system in one
// process; `talim token`, `talim notify` and `talim version` are small tools.
package main

import (
	"os"

	"github.com/talim/realtime/services/talim"
)

func main() { os.Exit(talim.Main(os.Args[1:], os.Stdout, os.Stderr)) }
