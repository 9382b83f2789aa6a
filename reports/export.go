package reports

// The escapers of this package, for commands that write their own reports
// in these formats (fleet currency): one Markdown escaper for every report.

// MarkdownCell escapes text for one cell of a Markdown table: one line, at
// most 500 characters, Markdown punctuation and HTML rendered literally.
func MarkdownCell(s string) string { return mdCell(s) }

// MarkdownCode renders s as inline code that is also safe in a table cell.
func MarkdownCode(s string) string { return mdCode(s) }
