package getopt

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

var testOptions = []Option{
	{Long: "all", Short: 'a'}, {Long: "basedir", Short: 'b', HasArg: true},
	{Long: "show", Short: 'n'}, {Long: "dry-run", Short: 'n'}, {Long: "symvers", Short: 'E', HasArg: true},
	{Long: "help", Short: 'h'}, {Long: "json"},
}

func TestParse(t *testing.T) {
	tests := []struct {
		args     []string
		taken    string // "letter-or-long=value" for each option, space separated
		operands []string
		stopped  bool
		stderr   string
	}{
		{[]string{"-a", "x", "-bDIR", "y"}, "a= b=DIR", []string{"x", "y"}, false, ""},
		{[]string{"-ab", "DIR"}, "a= b=DIR", nil, false, ""},
		{[]string{"--basedir=D", "--basedir", "E", "--", "-a"}, "b=D b=E", []string{"-a"}, false, ""},
		{[]string{"--dry", "--sh", "--all"}, "n= n= a=", nil, false, ""},
		{[]string{"--json"}, "json=", nil, false, ""},
		{[]string{"-h", "-a"}, "h=", nil, true, ""},
		{[]string{"-", "x"}, "", []string{"-", "x"}, false, ""},
		{[]string{"-x"}, "", nil, false, "prog: invalid option -- 'x'\n"},
		{[]string{"-b"}, "", nil, false, "prog: option requires an argument -- 'b'\n"},
		{[]string{"--basedir"}, "", nil, false, "prog: option '--basedir' requires an argument\n"},
		{[]string{"--all=1"}, "", nil, false, "prog: option '--all' doesn't allow an argument\n"},
		{[]string{"--s=1"}, "", nil, false, "prog: option '--s=1' is ambiguous; possibilities: '--show' '--symvers'\n"},
		{[]string{"--nope=1"}, "", nil, false, "prog: unrecognized option '--nope=1'\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var taken []string
			var stderr bytes.Buffer
			operands, stopped, ok := Parse("prog", testOptions, tt.args, &stderr, func(o *Option, v string, long bool) bool {
				name := string(o.Short)
				if o.Short == 0 {
					name = o.Long
				}
				taken = append(taken, fmt.Sprintf("%s=%s", name, v))
				return o.Short == 'h'
			})
			assert.Equal(t, tt.stderr, stderr.String())
			assert.Equal(t, tt.stderr == "", ok)
			assert.Equal(t, tt.stopped, stopped)
			assert.Equal(t, tt.taken, strings.Join(taken, " "))
			if ok {
				assert.Equal(t, tt.operands, operands)
			}
		})
	}
}
