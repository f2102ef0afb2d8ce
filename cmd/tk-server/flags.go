package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// envFlags registers flags whose default an environment variable can set:
// TK_ and the flag's name in upper case, with "-" as "_" (--addr:
// TK_ADDR). The command line wins over the variable. Help shows the
// variable in brackets after the flag's description, and the default
// the variable set, if any.
type envFlags struct {
	fs     *pflag.FlagSet
	getenv func(string) string
	// errs are the variables whose value does not parse; the command
	// fails with them before it does anything.
	errs []error
}

// envName is the environment variable of the flag name.
func envName(name string) string {
	return "TK_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// bind gives the flag name its variable.
func (e *envFlags) bind(name string) {
	f := e.fs.Lookup(name)
	env := envName(name)
	f.Usage += " [" + env + "]"
	v := e.getenv(env)
	if v == "" {
		return
	}
	if err := f.Value.Set(v); err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s: %w", env, err))
		return
	}
	f.DefValue = f.Value.String()
}

func (e *envFlags) str(p *string, name, def, usage string) {
	e.fs.StringVar(p, name, def, usage)
	e.bind(name)
}

func (e *envFlags) integer(p *int, name string, def int, usage string) {
	e.fs.IntVar(p, name, def, usage)
	e.bind(name)
}

func (e *envFlags) float(p *float64, name string, def float64, usage string) {
	e.fs.Float64Var(p, name, def, usage)
	e.bind(name)
}

func (e *envFlags) boolean(p *bool, name string, usage string) {
	e.fs.BoolVar(p, name, false, usage)
	e.bind(name)
}

func (e *envFlags) duration(p *time.Duration, name string, def time.Duration, usage string) {
	e.fs.DurationVar(p, name, def, usage)
	e.bind(name)
}
