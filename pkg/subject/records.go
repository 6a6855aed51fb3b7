package subject

// RecordsPrefix starts the records requests (docs/safeguarding.md, "Retention, legal hold, export,
// erasure"): chat asks the services that own a user's other data to export or
// erase it. The payloads are JSON (package records of each service):
//
//	RecordsExport: {"userId","after","limit"} → {"lines":[{"kind","data"}...],"next","error"}
//	RecordsErase:  {"userId"} → {"removed":{"<kind>":n},"error"}
//
// Both are answered in queue group "<service>".
const RecordsPrefix = "talim.records.v1."

// RecordsExport is the export subject of service (notification, presence).
func RecordsExport(service string) string { return RecordsPrefix + service + ".export" }

// RecordsErase is the erase subject of service.
func RecordsErase(service string) string { return RecordsPrefix + service + ".erase" }
