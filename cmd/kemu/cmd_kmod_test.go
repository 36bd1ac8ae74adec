package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// kemu modprobe hands modprobe.d's configuration (-C, or the host's directories) to the session's
// modprobe, with kmod's switches for it.
func TestModprobeConfig(t *testing.T) {
	const conf = "../../testdata/sessions/modprobe_conf.d"
	runKemuCases(t, []kemuCase{
		{"showconfig", []string{"modprobe", "-C", conf, "-c"}, true,
			[]string{"blacklist timers\ninstall fault_null /sbin/load-it-my-way $CMDLINE_OPTS\n", "\n# End of configuration files. Dumping indexes now:\n\n"}, nil},
		{"alias with options", []string{"modprobe", "-v", "-C", conf, "greeter", "verbose=1"}, true,
			[]string{"insmod /lib/modules/6.1.0-56-amd64/hello.ko count=2 whom=alias verbose=1\n", "hello: hello, alias"}, nil},
		{"show-depends loads nothing", []string{"modprobe", "-D", "-C", conf, "consumer"}, true,
			[]string{"producer.ko \ninsmod /lib/modules/6.1.0-56-amd64/compute.ko \n"}, []string{"consumer: producer_add"}},
		{"resolve-alias", []string{"modprobe", "-R", "-C", conf, "greeter-x"}, true, []string{"hello\n"}, nil},
		{"blacklisted alias", []string{"modprobe", "-C", conf, "ticker"}, true, nil, []string{"timers:"}},
		{"install command refused", []string{"modprobe", "-C", conf, "fault_null", "a=1"}, false,
			[]string{"could not insert 'fault_null': kemu cannot run the install command for fault_null: /sbin/load-it-my-way a=1"}, nil},
		{"install command ignored with -i", []string{"modprobe", "-i", "-C", conf, "hello"}, true, []string{"hello: hello, world"}, nil},
	})
}

// kemuCase is one kemu command line, whether it succeeds, and what its output must and must not
// contain.
type kemuCase struct {
	name   string
	args   []string
	ok     bool
	expect []string
	absent []string
}

func runKemuCases(t *testing.T, cases []kemuCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := runKemu(t, c.args...)
			if c.ok {
				require.NoError(t, err, out)
			} else {
				require.Error(t, err, out)
			}
			for _, e := range c.expect {
				assert.Contains(t, out, e)
			}
			for _, a := range c.absent {
				assert.NotContains(t, out, a)
			}
		})
	}
}
