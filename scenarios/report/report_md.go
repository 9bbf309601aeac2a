package report

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/brokerlab/brokerlab/scenarios/analysis"
	"github.com/brokerlab/brokerlab/scenarios/scenario"
	"github.com/brokerlab/brokerlab/topology"
)

// table is a report table; markdown and HTML render the same cells.
type table struct {
	header []string
	rows   [][]string
}

// markdown renders a GitHub-flavoured table with padded columns, readable in
// a terminal too. Numeric columns other than the first align right.
func (t table) markdown() string {
	right := t.numericColumns()
	width := make([]int, len(t.header))
	for i, h := range t.header {
		width[i] = max(3, utf8.RuneCountInString(mdCell(h)))
	}
	for _, r := range t.rows {
		for i, c := range r {
			if i < len(width) {
				width[i] = max(width[i], utf8.RuneCountInString(mdCell(c)))
			}
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		b.WriteString("|")
		for i := range width {
			c := ""
			if i < len(cells) {
				c = mdCell(cells[i])
			}
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if !right[i] {
				b.WriteString(" " + c + pad + " |")
			} else {
				b.WriteString(" " + pad + c + " |")
			}
		}
		b.WriteString("\n")
	}
	line(t.header)
	b.WriteString("|")
	for i, w := range width {
		if !right[i] {
			b.WriteString(" " + strings.Repeat("-", w) + " |")
		} else {
			b.WriteString(" " + strings.Repeat("-", w-1) + ": |")
		}
	}
	b.WriteString("\n")
	for _, r := range t.rows {
		line(r)
	}
	return b.String()
}

// numericColumns reports, per column, whether every cell is a number
// ("12.5", "2000/s", "–"); the first column never is.
func (t table) numericColumns() []bool {
	right := make([]bool, len(t.header))
	for i := 1; i < len(right); i++ {
		// Numeric when most cells are: a side-by-side column holds a few
		// words ("ordered") among its figures and still aligns right.
		num, all := 0, 0
		for _, r := range t.rows {
			if i < len(r) {
				all++
				if numericCell(r[i]) {
					num++
				}
			}
		}
		right[i] = all > 0 && num*4 >= all*3
	}
	return right
}

func numericCell(s string) bool {
	if s == "" || s == "–" {
		return true
	}
	for _, unit := range []string{" ms", " s", " min"} { // human durations: "2.03 s"
		s = strings.TrimSuffix(s, unit)
	}
	s = strings.TrimPrefix(s, "-")
	return s != "" && s[0] >= '0' && s[0] <= '9' && !strings.ContainsAny(s, " ,")
}

// mdCell keeps a cell on one line and its pipes literal.
func mdCell(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

// Number formats used by every report.
func fmtMs(v float64) string { return fmtSig(v) }

func fmtSig(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "–"
	case v == 0:
		return "0"
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case math.Abs(v) >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

func fmtSec(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }

func fmtOptSec(v *float64) string {
	if v == nil {
		return "–"
	}
	return fmtSec(*v)
}

func fmtRate(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }

func fmtCount(v int64) string { return strconv.FormatInt(v, 10) }

// label names a topology result in column headers: the topology, with the
// acks setting and the target rate where that topology ran several of
// them, and the repeat ("#2") of a repeated scenario.
func label(all []analysis.TopologyResult, i int) string {
	t := all[i]
	s := t.Topology
	for _, o := range all {
		if o.Topology == t.Topology && acksName(o.Acks) != acksName(t.Acks) {
			s += " acks=" + acksName(t.Acks)
			break
		}
	}
	if rateSteps(all, t.Topology) > 1 {
		s += " @ " + scenario.FormatRate(t.TargetRate)
	}
	if t.Repeat > 0 {
		s += " #" + strconv.Itoa(t.Repeat)
	}
	return s
}

// acksName is an acks setting as scenario files write it; "" for nil.
func acksName(a *int) string {
	switch {
	case a == nil:
		return ""
	case *a == scenario.AcksAll:
		return "all"
	}
	return strconv.Itoa(*a)
}

// rateSteps counts the distinct target rates topology t ran at.
func rateSteps(all []analysis.TopologyResult, t scenario.Topology) int {
	var rates []float64
	for _, o := range all {
		if o.Topology == t && !slices.Contains(rates, o.TargetRate) {
			rates = append(rates, o.TargetRate)
		}
	}
	return len(rates)
}

func labels(all []analysis.TopologyResult) []string {
	out := make([]string, len(all))
	for i := range all {
		out[i] = label(all, i)
	}
	return out
}

// summaryRow is one line of the side-by-side table.
type summaryRow struct {
	name string
	cell func(t analysis.TopologyResult) string
}

var summaryRows = []summaryRow{
	{"target rate (msgs/s)", func(t analysis.TopologyResult) string { return scenario.FormatRate(t.TargetRate) }},
	{"publish rate (acked/s)", func(t analysis.TopologyResult) string { return fmtRate(t.Summary.PublishRate) }},
	{"consume rate (msgs/s)", func(t analysis.TopologyResult) string { return fmtRate(t.Summary.ConsumeRate) }},
	{"publish p50 (ms)", func(t analysis.TopologyResult) string { return fmtMs(t.Summary.PublishP50Ms) }},
	{"publish p90 (ms)", func(t analysis.TopologyResult) string { return fmtMs(t.Summary.PublishP90Ms) }},
	{"publish p99 (ms)", func(t analysis.TopologyResult) string { return fmtMs(t.Summary.PublishP99Ms) }},
	{"publish p99.9 (ms)", func(t analysis.TopologyResult) string { return fmtMs(t.Summary.PublishP999Ms) }},
	{"publish max (ms)", func(t analysis.TopologyResult) string { return fmtMs(t.Summary.PublishMaxMs) }},
	{"e2e p50 (ms)", func(t analysis.TopologyResult) string { return fmtMs(t.Summary.E2EP50Ms) }},
	{"e2e p99 (ms)", func(t analysis.TopologyResult) string { return fmtMs(t.Summary.E2EP99Ms) }},
	{"e2e p99.9 (ms)", func(t analysis.TopologyResult) string { return fmtMs(t.Summary.E2EP999Ms) }},
	{"send delay p99 (ms)", func(t analysis.TopologyResult) string { return fmtMs(t.Summary.SendDelayP99Ms) }},
	{"max write unavailability (s)", func(t analysis.TopologyResult) string { return fmtSec(t.Summary.MaxUnavailabilityS) }},
	{"failure detection (s)", func(t analysis.TopologyResult) string { return fmtOptSec(t.Summary.DetectionS) }},
	{"route convergence (s)", func(t analysis.TopologyResult) string { return fmtOptSec(t.Summary.ConvergenceS) }},
	{"sent", func(t analysis.TopologyResult) string { return fmtCount(t.Summary.Sent) }},
	{"acked", func(t analysis.TopologyResult) string { return fmtCount(t.Summary.Acked) }},
	{"consumed (live, distinct)", func(t analysis.TopologyResult) string { return fmtCount(t.Summary.Consumed) }},
	{"failed", func(t analysis.TopologyResult) string { return fmtCount(t.Summary.Failed) }},
	{"acked but lost", func(t analysis.TopologyResult) string { return fmtCount(t.Summary.Lost) }},
	{"acked, unreadable", func(t analysis.TopologyResult) string { return fmtCount(t.Summary.Unreadable) }},
	{"duplicated", func(t analysis.TopologyResult) string { return fmtCount(t.Summary.Duplicated) }},
	{"reordered", func(t analysis.TopologyResult) string { return fmtCount(t.Summary.Reordered) }},
	{"producer retries", func(t analysis.TopologyResult) string { return retryWord(t.ProducerRetries) }},
	{"CPU other / steal / self (%)", func(t analysis.TopologyResult) string { return noiseCell(t.Noise) }},
	{"indeterminate (ok)", func(t analysis.TopologyResult) string { return fmtCount(t.Summary.Indeterminate) }},
	{"unexpected", func(t analysis.TopologyResult) string { return fmtCount(t.Summary.Unexpected) }},
	{"control-plane requests/s", func(t analysis.TopologyResult) string { return fmtSig(t.Summary.CPRequestsPerS) }},
	{"control-plane bytes/s", func(t analysis.TopologyResult) string { return fmtRate(t.Summary.CPBytesPerS) }},
	{"CPU per acked message (µs)", func(t analysis.TopologyResult) string { return fmtSig(cpuPerAcked(t)) }},
}

// retryWord is the first word of a producer's retry description
// ("ordered", "unordered"), or a dash when it gave none; result.json
// carries the whole line.
func retryWord(desc string) string {
	w, _, _ := strings.Cut(desc, ":")
	return orDash(strings.TrimSpace(w))
}

// noiseCell is "other / steal / self" CPU in percent, "!" marking a run
// the report warns about.
func noiseCell(n *analysis.Noise) string {
	if n == nil {
		return "–"
	}
	c := fmt.Sprintf("%.0f / %.0f / %.0f", n.OtherPct, n.StealPct, n.SelfPct)
	if len(n.Warnings) > 0 {
		c += " !"
	}
	return c
}

// summaryTable is the side-by-side table: one column per topology result.
func summaryTable(all []analysis.TopologyResult, heads []string) table {
	t := table{header: append([]string{"metric"}, heads...)}
	for _, row := range summaryRows {
		cells := []string{row.name}
		for _, tr := range all {
			cells = append(cells, row.cell(tr))
		}
		t.rows = append(t.rows, cells)
	}
	return t
}

// faultTable has one row per fault and topology. Each partition gap is
// charged to one fault: the gap column says when the charged gaps were
// (the band of the same F<n> in the throughput chart), and a fault that
// shares a gap with another says so ("overlaps F3") instead of both being
// charged for it.
func faultTable(all []analysis.TopologyResult) table {
	t := table{header: []string{"at (s)", "fault", "topology", "node", "write unavailable (s)", "gap (s)", "partitions hit", "detection (s)", "convergence (s)", "note"}}
	heads := labels(all)
	for i, tr := range all {
		idx := faultIndexes(all, tr)
		for j, f := range tr.Faults {
			var notes []string
			if f.Err != "" {
				notes = append(notes, f.Err)
			}
			if f.Note != "" {
				notes = append(notes, f.Note)
			}
			if !f.Recovered {
				notes = append(notes, "did not recover")
			}
			if o := overlapNote(f, idx); o != "" {
				notes = append(notes, o)
			}
			t.rows = append(t.rows, []string{
				fmtSec(f.AtS), fmt.Sprintf("F%d %s %s", idx[j]+1, f.Action, f.Target), heads[i], orDash(f.Node),
				fmtSec(f.UnavailableS), gapWindow(f), strconv.Itoa(analysis.HitPartitions(f)),
				fmtOptSec(f.DetectionS), fmtOptSec(f.ConvergenceS), strings.Join(notes, "; "),
			})
		}
	}
	return t
}

// gapWindow is "from–to" of the gaps charged to f, in seconds after the
// start, or "–".
func gapWindow(f analysis.FaultResult) string {
	if len(f.Partitions) == 0 {
		return "–"
	}
	return strconv.FormatFloat(f.GapStartS, 'f', 1, 64) + "–" + strconv.FormatFloat(f.GapStartS+f.UnavailableS, 'f', 1, 64)
}

// overlapNote names the faults f shares a gap with, by their F numbers
// (idx maps the topology's fault indexes to them).
func overlapNote(f analysis.FaultResult, idx []int) string {
	var names []string
	for _, k := range f.Overlaps {
		if k >= 0 && k < len(idx) {
			names = append(names, "F"+strconv.Itoa(idx[k]+1))
		}
	}
	if len(names) == 0 {
		return ""
	}
	return "overlaps " + strings.Join(names, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// cpTable lists control-plane cost by request kind.
func cpTable(all []analysis.TopologyResult) table {
	t := table{header: []string{"topology", "kind", "requests/s", "bytes/s", "requests", "bytes"}}
	heads := labels(all)
	for i, tr := range all {
		for _, k := range tr.ControlPlane.ByKind {
			t.rows = append(t.rows, []string{heads[i], k.Kind, fmtSig(k.RequestsPerS), fmtRate(k.BytesPerS), fmtCount(k.Requests), fmtCount(k.Bytes)})
		}
	}
	return t
}

// unreadableTable lists the partitions the verification read could not
// read to their end (their acked messages are unreadable, not lost).
func unreadableTable(all []analysis.TopologyResult) table {
	t := table{header: []string{"topology", "partition", "read to", "high watermark", "acked end", "unreadable for (s)", "reason"}}
	heads := labels(all)
	for i, tr := range all {
		for _, u := range tr.Check.UnreadablePartitions {
			t.rows = append(t.rows, []string{heads[i], strconv.Itoa(int(u.Partition)), fmtCount(u.ReadTo),
				fmtCount(u.HighWatermark), fmtCount(u.AckedEnd), fmtSec(u.ForS), u.Reason})
		}
	}
	return t
}

// unreadableNote introduces unreadableTable.
const unreadableNote = "The verification read (a fresh consumer from offset 0 after the drain) could not read these partitions to their end. " +
	"Acknowledged messages it did not reach are counted as unreadable: whether the log still holds them is unknown, so they are not counted as lost."

// sampleTable lists the checker's examples.
func sampleTable(all []analysis.TopologyResult) table {
	t := table{header: []string{"topology", "finding", "producer", "seq", "partition", "outcome", "acked offset", "received at", "note"}}
	heads := labels(all)
	for i, tr := range all {
		c := tr.Check
		for _, g := range []struct {
			name string
			ms   []analysis.MessageSample
		}{
			{"lost", c.LostSamples}, {"unreadable", c.UnreadableSamples}, {"duplicated", c.DuplicatedSamples}, {"reordered", c.ReorderedSamples},
			{"unexpected", c.UnexpectedSamples}, {"indeterminate", c.IndeterminateSamples},
		} {
			for _, m := range g.ms {
				offs := make([]string, len(m.Offsets))
				for j, o := range m.Offsets {
					offs[j] = strconv.FormatInt(o, 10)
				}
				t.rows = append(t.rows, []string{heads[i], g.name, strconv.Itoa(int(m.Producer)), fmtCount(m.Seq),
					strconv.Itoa(int(m.Partition)), orDash(m.Outcome), fmtCount(m.AckedOffset), orDash(strings.Join(offs, ", ")), m.Note})
			}
		}
	}
	return t
}

// scenarioLine describes the setup in one sentence.
func scenarioLine(s scenario.Spec) string {
	w := s.Workload
	rates := make([]string, len(w.Rates))
	for i, r := range w.Rates {
		rates[i] = scenario.FormatRate(r)
	}
	if rs := w.RateSearch; rs != nil {
		rates = []string{fmt.Sprintf("a searched rate (%s to %s, p99 below %v)", scenario.FormatRate(rs.Start), scenario.FormatRate(rs.Max), rs.P99Below)}
	}
	acks := acksName(&w.Acks)
	for i, a := range w.AcksSweep {
		if i == 0 {
			acks = acksName(&a)
		} else {
			acks += " then " + acksName(&a)
		}
	}
	return fmt.Sprintf("%d brokers, %s, timings %s; topic %s: %d partitions × %d replicas (min in-sync %d); "+
		"%d producers at %s, %s messages, acks=%s; %s; %v run, %v warm-up",
		s.Cluster.Brokers, nodesLine(s), s.Cluster.Profile,
		s.Topic.Name, s.Topic.Partitions, s.Topic.Replication, s.Topic.MinInsync,
		w.Producers, strings.Join(rates, ", "), scenario.FormatSize(int64(w.MessageSize)), acks, plural(int64(w.Consumers), "consumer"), w.Duration, w.Warmup)
}

// nodesLine counts the control-plane nodes of the cluster fields the
// scenario's topologies use ("2 name servers, 1 etcd").
func nodesLine(s scenario.Spec) string {
	var parts []string
	for _, f := range topology.Fields() {
		used := false
		for _, t := range s.Topologies {
			d, _ := topology.Lookup(t)
			used = used || slices.ContainsFunc(d.Roles, func(r topology.Role) bool { return r.Field == f.Name })
		}
		if used {
			parts = append(parts, fmt.Sprintf("%d %s", s.Cluster.Count(f.Name), f.Plural))
		}
	}
	if len(parts) == 0 {
		return "no control-plane nodes"
	}
	return strings.Join(parts, ", ")
}

func environmentLine(e Environment) string {
	commit := e.Commit
	if len(commit) > 12 {
		commit = commit[:12]
	}
	if e.Modified {
		commit += " (modified)"
	}
	limit := ""
	if e.MemoryLimit > 0 {
		limit = ", memory limit " + scenario.FormatSize(e.MemoryLimit)
	}
	return fmt.Sprintf("%s, %d cores, %s %s/%s, commit %s%s, started %s",
		orDash(e.CPUModel), e.Cores, e.GoVersion, e.OS, e.Arch, orDash(commit), limit, e.Start.UTC().Format(time.RFC3339))
}

// RenderMarkdown renders report.md: setup, the side-by-side summary, the
// per-fault table, control-plane cost by kind and checker samples.
func RenderMarkdown(r Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# brokerlab: %s\n\n", r.Scenario.Name)
	if d := strings.TrimSpace(r.Scenario.Description); d != "" {
		b.WriteString(d + "\n\n")
	}
	fmt.Fprintf(&b, "- **Setup:** %s.\n", scenarioLine(r.Scenario))
	fmt.Fprintf(&b, "- **Runtime:** %s.\n", orDash(r.Runtime))
	fmt.Fprintf(&b, "- **Environment:** %s.\n\n", environmentLine(r.Environment))
	all := r.Topologies
	for i, tr := range all {
		if tr.Error != "" {
			fmt.Fprintf(&b, "> **%s failed:** %s\n\n", label(all, i), mdCell(tr.Error))
		}
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(&b, "> **Skipped:** %s\n\n", mdCell(s))
	}
	if len(all) > 0 {
		b.WriteString("## Summary\n\n")
		fs, verdict := findings(all), verdictTable(all, labels(all))
		if r.Repeats != nil {
			fs, verdict = repeatFindings(all, r.Repeats), repeatVerdictTable(r.Repeats)
		}
		for _, f := range fs {
			fmt.Fprintf(&b, "- %s ([details](#%s))\n", f.Text, f.Anchor)
		}
		b.WriteString("\n")
		b.WriteString(verdict.markdown())
		b.WriteString("\n")
	}
	b.WriteString("## Side by side\n\nLatency is measured from each message's intended send time (open loop); rates and latencies exclude the warm-up, counts cover the whole run.\n\n")
	if r.Repeats != nil {
		b.WriteString(repeatNote(r.Repeats) + " Every run's own figures are in result.json.\n\n")
		for _, rt := range spreadTables(r.Repeats) {
			if rt.title != "" {
				b.WriteString("\n### " + rt.title + "\n\n")
			}
			b.WriteString(rt.t.markdown())
		}
	} else {
		for _, g := range sideBySideGroups(all) {
			if g.title != "" {
				b.WriteString("\n### " + g.title + "\n\n")
			}
			b.WriteString(summaryTable(g.results, labels(g.results)).markdown())
		}
	}
	if st := sweepTable(medianRuns(r.Topologies, r.Repeats)); len(st.rows) > 0 {
		b.WriteString("\n## Rate sweep\n\nAcked messages per second and publish p99 at each target rate (rows), per topology (columns)")
		if r.Repeats != nil {
			b.WriteString(", medians over the repeats")
		}
		b.WriteString(".\n\n")
		b.WriteString(st.markdown())
	}
	if len(r.Searches) > 0 {
		b.WriteString("\n## Rate search\n\n" + searchNote(r.Scenario.Workload.RateSearch) + "\n\n")
		b.WriteString(searchTable(r.Searches).markdown())
	}
	if r.Repeats != nil {
		if kt := faultKindTable(r.Repeats); len(kt.rows) > 0 {
			b.WriteString("\n## Faults by kind over the repeats\n\n" + faultKindNote + "\n\n")
			b.WriteString(kt.markdown())
		}
	}
	if ft := faultTable(all); len(ft.rows) > 0 {
		b.WriteString("\n## Faults\n\nWrite unavailability: first failed send after the fault to the first acked send after it, spanned over the partitions it hit. Each partition's gap is charged once, to the latest fault before it that can affect the partition (a broker fault the partitions the broker led or replicated, a control-plane fault all of them); faults that share a gap say so (\"overlaps F2\") instead of both being charged. The gap column is when the charged gaps were, the band of the same F in the throughput charts.\n\n")
		b.WriteString(ft.markdown())
	}
	if ut := unreadableTable(all); len(ut.rows) > 0 {
		b.WriteString("\n## Unreadable partitions\n\n" + unreadableNote + "\n\n")
		b.WriteString(ut.markdown())
	}
	if ct := cpTable(all); len(ct.rows) > 0 {
		b.WriteString("\n## Control-plane cost by request kind\n\n")
		b.WriteString(ct.markdown())
	}
	if rt := resourceTable(all); len(rt.rows) > 0 {
		b.WriteString("\n## CPU and memory\n\nFrom the producers' start to the end of the drain. In-process, every node, the runner and its clients share one process.\n\n")
		b.WriteString(rt.markdown())
	}
	if st := sampleTable(all); len(st.rows) > 0 {
		b.WriteString("\n## Checker findings\n\nThe first samples of each finding.\n\n")
		b.WriteString(st.markdown())
	}
	return b.String()
}

// Compare renders the side-by-side table over several results (`brokerlab
// compare A.json B.json`): one column per topology result of each, headed
// "#N topology", with a legend of the results above.
func Compare(results []Result) string {
	var b strings.Builder
	var all []analysis.TopologyResult
	var heads []string
	for i, r := range results {
		fmt.Fprintf(&b, "#%d %s: %s; %s\n", i+1, orDash(r.Scenario.Name), orDash(r.Runtime), environmentLine(r.Environment))
		ls := labels(r.Topologies)
		for j, tr := range r.Topologies {
			all = append(all, tr)
			heads = append(heads, fmt.Sprintf("#%d %s", i+1, ls[j]))
		}
	}
	if len(all) == 0 {
		return b.String() + "(no topology results)\n"
	}
	b.WriteString("\n")
	b.WriteString(summaryTable(all, heads).markdown())
	return b.String()
}

// sortedTopologies returns the distinct topology names in registry order
// (topology.Descriptor.Order), unknown ones last.
func sortedTopologies(all []analysis.TopologyResult) []string {
	var out []string
	for _, tr := range all {
		if !slices.Contains(out, tr.Topology) {
			out = append(out, tr.Topology)
		}
	}
	slices.SortStableFunc(out, func(a, b string) int { return topology.Rank(a) - topology.Rank(b) })
	return out
}
