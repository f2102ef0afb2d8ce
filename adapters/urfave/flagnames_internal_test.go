package tkurfave

import (
	"slices"
	"testing"

	"github.com/urfave/cli/v2"
)

// customFlag is a flag type of an app's own, with no Name field.
type customFlag struct{ cli.BoolFlag }

func (f *customFlag) Names() []string { return []string{"custom", "c"} }

type namedFlag struct {
	cli.StringFlag
	Name int // shadows the embedded Name with another type
}

// flagNames answers what Names() answers, for every flag type of urfave/cli
// v2 and for the v1 "name, alias" form.
func TestFlagNamesMatchesNames(t *testing.T) {
	flags := []cli.Flag{
		&cli.BoolFlag{Name: "watch", Aliases: []string{"w"}},
		&cli.StringFlag{Name: "out, o"},
		&cli.StringFlag{Name: "target", Aliases: []string{"t", "env name"}},
		&cli.IntFlag{Name: "port"},
		&cli.Int64Flag{Name: "i64"},
		&cli.UintFlag{Name: "u"},
		&cli.Uint64Flag{Name: "u64"},
		&cli.Float64Flag{Name: "f"},
		&cli.DurationFlag{Name: "timeout", Aliases: []string{"T"}},
		&cli.TimestampFlag{Name: "at"},
		&cli.StringSliceFlag{Name: "tag"},
		&cli.IntSliceFlag{Name: "n"},
		&cli.Int64SliceFlag{Name: "n64"},
		&cli.Float64SliceFlag{Name: "fs"},
		&cli.UintSliceFlag{Name: "us"},
		&cli.Uint64SliceFlag{Name: "u64s"},
		&cli.PathFlag{Name: "config", Aliases: []string{"c"}},
		&cli.GenericFlag{Name: "g"},
		&cli.BoolFlag{Name: ""},
		&customFlag{},
		&namedFlag{StringFlag: cli.StringFlag{Name: "inner"}},
	}
	for _, f := range flags {
		if got, want := flagNames(f), f.Names(); !slices.Equal(got, want) {
			t.Errorf("%T: flagNames = %q, Names = %q", f, got, want)
		}
	}
}
