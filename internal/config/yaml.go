package config

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// rawSections are read as written: display.platforms.<name>.* holds
// per-platform display settings.
var rawSections = []string{"display.platforms"}

// readYAML parses config.yaml into its top-level mapping node. A missing
// default file means an empty configuration; a missing --config file is an error.
func readYAML(path string, mustExist bool) (*yaml.Node, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !mustExist {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: line %d: the top level must be a mapping of keys, got %s", path, root.Line, kindName(root))
	}
	return root, nil
}

// The shapes a value can have where another was expected.
var (
	errNotMapping = errors.New("not a mapping")
	errMapping    = errors.New("a mapping")
)

// shapeError is a value of the wrong shape, its message naming the line;
// it unwraps to errNotMapping or errMapping.
type shapeError struct {
	msg  string
	kind error
}

func (e *shapeError) Error() string { return e.msg }
func (e *shapeError) Unwrap() error { return e.kind }

// child returns the value under key in a mapping node.
func child(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// nodeAt follows a dotted path such as "gateway.proxy_url". An intermediate
// value that is not a mapping is reported, since the user meant something there.
func nodeAt(root *yaml.Node, path string) (*yaml.Node, error) {
	n := root
	parts := strings.Split(path, ".")
	for i, p := range parts {
		if n == nil {
			return nil, nil
		}
		if n.Kind == yaml.AliasNode {
			n = n.Alias
		}
		if n.Kind != yaml.MappingNode {
			if i == 0 {
				return nil, nil
			}
			return nil, &shapeError{fmt.Sprintf("line %d: %s must be a mapping, got %s", n.Line, strings.Join(parts[:i], "."), kindName(n)), errNotMapping}
		}
		n = child(n, p)
	}
	if n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n, nil
}

// scalarAt returns the single value at path. A null value counts as unset;
// a list of single values is joined with commas, as lists are in variables.
func scalarAt(root *yaml.Node, path string) (string, bool, error) {
	n, err := nodeAt(root, path)
	if err != nil || n == nil {
		return "", false, err
	}
	if n.Kind == yaml.SequenceNode {
		items := make([]string, 0, len(n.Content))
		for _, item := range n.Content {
			if item.Kind != yaml.ScalarNode {
				return "", false, fmt.Errorf("line %d: expected a list of single values, got %s in it", item.Line, kindName(item))
			}
			items = append(items, item.Value)
		}
		return strings.Join(items, ","), true, nil
	}
	if n.Kind != yaml.ScalarNode {
		err := fmt.Errorf("line %d: expected a single value, got %s", n.Line, kindName(n))
		if n.Kind == yaml.MappingNode {
			err = &shapeError{err.Error(), errMapping}
		}
		return "", false, err
	}
	if n.Tag == "!!null" {
		return "", false, nil
	}
	return n.Value, true, nil
}

// readDisplayPlatforms reads display.platforms.<name>.streaming, which
// turns streaming on or off for one platform, and .tool_progress, which
// sets what its chats show of the agent's tools.
func (c *Config) readDisplayPlatforms(root *yaml.Node) []error {
	const path = "display.platforms"
	var platforms map[string]map[string]any
	n, err := nodeAt(root, path)
	if err == nil && n != nil && n.Tag != "!!null" {
		if n.Kind != yaml.MappingNode {
			err = fmt.Errorf("line %d: expected a mapping, got %s", n.Line, kindName(n))
		} else if derr := n.Decode(&platforms); derr != nil {
			err = fmt.Errorf("line %d: expected a mapping of names to mappings: %w", n.Line, derr)
		}
	}
	if err != nil {
		return []error{fmt.Errorf("%s: %s: %w", c.File, path, err)}
	}
	var errs []error
	for name, settings := range platforms {
		if v, ok := settings["streaming"]; ok {
			if on, isBool := v.(bool); isBool {
				c.PlatformStreaming[name] = on
			} else {
				errs = append(errs, fmt.Errorf("%s: %s.%s.streaming: expected true or false, got %v", c.File, path, name, v))
			}
		}
		if v, ok := settings["tool_progress"]; ok && v != nil {
			var mode string
			if _, err := toolProgress(&mode)(fmt.Sprint(v)); err != nil {
				errs = append(errs, fmt.Errorf("%s: %s.%s.tool_progress: %w", c.File, path, name, err))
			} else {
				c.PlatformToolProgress[name] = mode
			}
		}
	}
	return errs
}

// fromFile reads the setting from config.yaml: its key, else the first of
// its other keys that is there. key is the one read, "" when none is.
//
// Hermes writes some settings either as one value or as a mapping (its
// home_channel: {chat_id, thread_id, name}): a mapping at a key is read
// through a later AltKey inside it, and an AltKey inside a single value is
// not there.
func (s Setting) fromFile(root *yaml.Node) (value, key string, err error) {
	keys := append([]string{s.Key}, s.AltKeys...)
	for i, k := range keys {
		if k == "" {
			continue
		}
		v, ok, err := scalarAt(root, k)
		switch {
		case errors.Is(err, errMapping) && slices.ContainsFunc(keys[i+1:], func(alt string) bool { return strings.HasPrefix(alt, k+".") }):
			continue
		case i > 0 && errors.Is(err, errNotMapping):
			continue
		case err != nil || ok:
			return v, k, err
		}
	}
	return "", "", nil
}

// unknownKeys says, one warning each, which config.yaml keys none of the
// settings reads: a key neither Herald nor Hermes has (a typo, most often),
// naming the closest key Herald knows, and a Hermes gateway key Herald does
// not honour yet, saying why. Hermes's keys for the agent itself pass
// without a word, unless one is a letter or two from a key of Herald's.
func unknownKeys(file string, root *yaml.Node, settings []Setting) []string {
	known := map[string]bool{}
	for _, s := range settings {
		for _, k := range append([]string{s.Key}, s.AltKeys...) {
			if k != "" {
				known[k] = true
			}
		}
	}
	names := make([]string, 0, len(known))
	for k := range known {
		names = append(names, k)
	}
	sort.Strings(names)
	var warnings []string
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			path := prefix + n.Content[i].Value
			v := n.Content[i+1]
			h, isHermes := hermesKey(path)
			switch {
			case known[path] || isRawSection(path):
			case v.Kind == yaml.MappingNode && (isPrefixOfKnown(path, known) || underHermesKey(path)):
				walk(v, path+".")
			case isHermes && h.Mark == NotYet:
				warnings = append(warnings, fmt.Sprintf("%s: %s is a Hermes setting Herald does not honour yet (%s); it is ignored", file, path, h.Why))
			case isHermes && editDistance(path, closest(path, names)) > 2:
			case isHermes && v.Kind == yaml.MappingNode:
				walk(v, path+".")
			default:
				warnings = append(warnings, fmt.Sprintf("%s: %s is not a setting of Herald or Hermes and is ignored; did you mean %s?", file, path, closest(path, names)))
			}
		}
	}
	if root != nil {
		walk(root, "")
	}
	sort.Strings(warnings)
	return warnings
}

func isRawSection(path string) bool {
	for _, s := range rawSections {
		if path == s {
			return true
		}
	}
	return false
}

func isPrefixOfKnown(path string, known map[string]bool) bool {
	for k := range known {
		if strings.HasPrefix(k, path+".") {
			return true
		}
	}
	for _, s := range rawSections {
		if strings.HasPrefix(s, path+".") {
			return true
		}
	}
	return false
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("the value %q", n.Value)
	}
	return "something else"
}
