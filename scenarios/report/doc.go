// Package report stores and renders results: result.json ([Result],
// [WriteResult], [ReadResult]), report.md and report.html with their summary,
// tables and inline SVG charts ([WriteAll], [RenderMarkdown], [RenderHTML]),
// a stored run rendered again ([Rerender]) or checked again from its
// streamed history ([Recheck]), and two results side by side ([Compare]).
// It reads what package analysis computed and never runs anything.
package report
