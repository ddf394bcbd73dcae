package config

import (
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// lineOf finds the line of the node at a key path such as
// "listeners.edge.routes[0].upstream". When the path does not exist in the
// file (a required key is missing) it returns the line of the deepest
// ancestor that does.
func lineOf(root *yaml.Node, path string) int {
	n := document(root)
	line := n.Line
	for _, seg := range splitPath(path) {
		next, keyLine := child(n, seg)
		if next == nil {
			return line
		}
		n, line = next, keyLine
	}
	return line
}

// splitPath turns "a.b[1].c" into ["a", "b", "[1]", "c"].
func splitPath(path string) []string {
	var segs []string
	for _, part := range strings.Split(path, ".") {
		for {
			i := strings.IndexByte(part, '[')
			if i < 0 {
				break
			}
			if i > 0 {
				segs = append(segs, part[:i])
			}
			j := strings.IndexByte(part[i:], ']')
			if j < 0 {
				break
			}
			segs = append(segs, part[i:i+j+1])
			part = part[i+j+1:]
		}
		if part != "" {
			segs = append(segs, part)
		}
	}
	return segs
}

// child returns the node under seg and the line to report for it: a
// mapping key's own line, or a sequence item's line.
func child(n *yaml.Node, seg string) (*yaml.Node, int) {
	n = resolve(n)
	if strings.HasPrefix(seg, "[") {
		i, err := strconv.Atoi(strings.Trim(seg, "[]"))
		if err != nil || n.Kind != yaml.SequenceNode || i < 0 || i >= len(n.Content) {
			return nil, 0
		}
		return n.Content[i], n.Content[i].Line
	}
	if n.Kind != yaml.MappingNode {
		return nil, 0
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == seg {
			return n.Content[i+1], n.Content[i].Line
		}
	}
	return nil, 0
}

func document(root *yaml.Node) *yaml.Node {
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		return root.Content[0]
	}
	return root
}

func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// keyPathAt returns the key path of the node on the given line: the
// mapping key named key if given, else the entry whose value is value, else
// the first node found on that line.
func keyPathAt(root *yaml.Node, line int, key, value string) string {
	if key == "" && value != "" {
		if p := findPath(root, func(k, v *yaml.Node) bool { return v.Line == line && v.Value == value }); p != "" {
			return p
		}
	}
	return findPath(root, func(k, v *yaml.Node) bool {
		if k == nil {
			return key == "" && v.Line == line && v.Kind == yaml.ScalarNode
		}
		return k.Line == line && (key == "" || k.Value == key)
	})
}

// findPath walks the document and returns the key path of the first
// mapping entry (k, v) or sequence item (nil, v) that match accepts.
func findPath(root *yaml.Node, match func(k, v *yaml.Node) bool) string {
	var walk func(n *yaml.Node, path string) (string, bool)
	walk = func(n *yaml.Node, path string) (string, bool) {
		n = resolve(n)
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := joinPath(path, k.Value)
				if match(k, v) {
					return p, true
				}
				if found, ok := walk(v, p); ok {
					return found, true
				}
			}
		case yaml.SequenceNode:
			for i, item := range n.Content {
				p := path + "[" + strconv.Itoa(i) + "]"
				if match(nil, item) {
					return p, true
				}
				if found, ok := walk(item, p); ok {
					return found, true
				}
			}
		}
		return "", false
	}
	p, _ := walk(document(root), "")
	return p
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}
