// Package suggest finds the known name closest to a misspelt one, for "did
// you mean" hints in error messages and warnings.
package suggest

import (
	"strings"
	"unicode/utf8"
)

// Distance is the Levenshtein edit distance between a and b (insertions,
// deletions and substitutions of runes, each costing 1), compared
// case-insensitively.
func Distance(a, b string) int {
	ra, rb := []rune(strings.ToLower(a)), []rune(strings.ToLower(b))
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// Closest returns the candidate nearest to name, and true, when it is a
// plausible misspelling: at most a third of name's length away (at least 1,
// at most 3 edits). Ties go to the earlier candidate. An exact
// (case-insensitive) match is not a suggestion and returns false.
func Closest(name string, candidates []string) (string, bool) {
	limit := min(max(utf8.RuneCountInString(name)/3, 1), 3)
	best, bestD := "", limit+1
	for _, c := range candidates {
		d := Distance(name, c)
		if d == 0 {
			return "", false
		}
		if d < bestD {
			best, bestD = c, d
		}
	}
	return best, best != ""
}

// DidYouMean is " (did you mean X?)" for the closest candidate, or "".
func DidYouMean(name string, candidates []string) string {
	if c, ok := Closest(name, candidates); ok {
		return " (did you mean " + c + "?)"
	}
	return ""
}
