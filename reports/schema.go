package reports

import _ "embed"

//go:embed schema/report.schema.json
var reportSchema []byte

// SchemaID is the $id of the published JSON Schema of the JSON report.
const SchemaID = "https://github.com/arcagent/arcagent/reports/schema/report.schema.json"

// Schema returns the JSON Schema (draft 2020-12) of the JSON report at
// SchemaVersion, as published in reports/schema/report.schema.json.
func Schema() []byte { return append([]byte(nil), reportSchema...) }
