package config

import (
	"fmt"
	"os"
	"sort"
)

// Category groups environment variables as Hermes does.
type Category string

// The categories Hermes uses for its optional environment variables.
const (
	Messaging Category = "messaging"
	Provider  Category = "provider"
	General   Category = "setting"
	Tool      Category = "tool"
)

// Var describes one environment variable the program reads, in the shape
// of Hermes's registry of optional variables.
type Var struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Prompt      string   `json:"prompt"`
	URL         string   `json:"url,omitempty"`
	Secret      bool     `json:"secret"`
	Category    Category `json:"category"`
	Advanced    bool     `json:"advanced"`
}

// All returns every setting Herald reads, in the order `herald check`
// lists them: HERALD_HOME, the settings every gateway has, then each
// registered platform's own and its allowlists. The values they are bound
// to are thrown away: this is for describing them.
func All() []Setting {
	all := append([]Setting{homeSetting}, (&Config{}).settings()...)
	for _, p := range registered() {
		all = append(all, p.new().Settings()...)
		all = append(all, accessSettings(p.name, &Access{})...)
		all = append(all, platformSwitches(p.name, new(bool), new(bool))...)
	}
	return all
}

// Registry returns every environment variable Herald reads, sorted by
// name. Env.Get refuses a name that is not here, and a test checks that no
// other code reads the environment.
func Registry() []Var {
	var vars []Var
	for _, s := range All() {
		if s.Env != "" {
			vars = append(vars, Var{Name: s.Env, Description: s.Description, Prompt: s.Prompt, URL: s.URL,
				Secret: s.Secret, Category: s.Category, Advanced: s.Advanced})
		}
	}
	sort.Slice(vars, func(i, j int) bool { return vars[i].Name < vars[j].Name })
	return vars
}

// Lookup returns the registry entry for name.
func Lookup(name string) (Var, bool) {
	for _, v := range Registry() {
		if v.Name == name {
			return v, true
		}
	}
	return Var{}, false
}

// Env reads registered variables: the process environment first, then a
// .env file, which never overrides the real environment.
type Env struct {
	lookup   func(string) (string, bool)
	file     map[string]string
	filePath string
}

// ProcessEnv reads the real process environment. It is the only place the
// program touches os.LookupEnv.
func ProcessEnv() *Env {
	return &Env{lookup: os.LookupEnv}
}

// LoadFile reads a .env file beneath the environment. A missing file is not an error.
func (e *Env) LoadFile(path string) error {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	m, err := parseDotenv(data)
	if err != nil {
		return fmt.Errorf("%s: %w (values are not shown, they may be secrets)", path, err)
	}
	e.file, e.filePath = m, path
	return nil
}

// Get returns a registered variable's value and where it came from
// ("env NAME" or "FILE: NAME"). It panics on an unregistered name: that is a
// programming error the registry test catches.
func (e *Env) Get(name string) (value, origin string, ok bool) {
	if _, known := Lookup(name); !known {
		panic("config: environment variable " + name + " is not in the registry")
	}
	if v, ok := e.lookup(name); ok {
		return v, "env " + name, true
	}
	if v, ok := e.file[name]; ok {
		return v, e.filePath + ": " + name, true
	}
	return "", "", false
}
