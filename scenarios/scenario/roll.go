package scenario

import (
	"fmt"
	"strings"
)

// A roll (`roll: brokers`) runs as one graceful stop and one restart per
// broker; its events name the step in their target.

const rollLabel = " (roll "

// RollStepTarget names step (1-based) of steps on node t in fault events:
// "broker 1 (roll 2/3)".
func RollStepTarget(t Target, step, steps int) string {
	return fmt.Sprintf("%s%s%d/%d)", t, rollLabel, step, steps)
}

// RollStepNode returns the node of a roll step's target ("broker 1") and
// whether target is one.
func RollStepNode(target string) (string, bool) {
	node, _, ok := strings.Cut(target, rollLabel)
	return node, ok
}
