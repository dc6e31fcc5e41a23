package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/hookstream/hookstream/internal/config"
	"github.com/hookstream/hookstream/internal/vendors"
)

const configHelp = `Usage: hookstream config check FILE

Loads FILE as 'hookstream serve --config FILE' would (with ${VAR}
references expanded from the environment and the vendors this binary is
built with) and prints the effective config, defaults included, as YAML
with every secret (passwords, tokens, handshake keys, secret_key,
telemetry.headers values) shown as "[MASKED]". An invalid file prints
the error, naming the line and key.

  hookstream config check hookstream.yaml

Exit codes: 0 valid, 1 invalid or unreadable, 2 usage error.
`

// secretKeys are the YAML keys whose values config check masks.
var secretKeys = map[string]bool{"password": true, "token": true, "handshake_key": true, "secret_key": true}

func configCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, configHelp) }
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 || fs.Arg(0) != "check" {
		fs.Usage()
		return usagef("usage: hookstream config check FILE")
	}
	if err := parseFlags(fs, fs.Args()[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("usage: hookstream config check FILE")
	}
	cfg, err := config.Load(fs.Arg(0), vendors.Config())
	if err != nil {
		return err
	}
	out, err := maskedYAML(cfg)
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}

// maskedYAML renders cfg with the values of secretKeys masked, and each
// source's auth as it is written in a config (`none`, or one scheme).
func maskedYAML(cfg *config.Config) ([]byte, error) {
	raw, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	mask(&doc, "")
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	return b.Bytes(), enc.Close()
}

func mask(n *yaml.Node, key string) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			mask(c, key)
		}
	case yaml.MappingNode:
		if key == "auth" {
			fixAuth(n)
			if n.Kind != yaml.MappingNode {
				return
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			// telemetry.headers hold a tracing backend's credentials
			// under names of its own choosing: every value is masked.
			if (secretKeys[k.Value] || key == "headers") && v.Kind == yaml.ScalarNode && v.Value != "" {
				v.Value, v.Tag, v.Style = "[MASKED]", "!!str", 0
				continue
			}
			// NATS takes credentials in its URLs too (nats://user:pw@host,
			// nats://token@host; log.url may list several).
			if key == "log" && k.Value == "url" && v.Kind == yaml.ScalarNode {
				v.Value = maskURLs(v.Value)
			}
			mask(v, k.Value)
		}
	}
}

// maskURLs masks the user information of each URL in a comma-separated
// list, keeping the user name where there is a password.
func maskURLs(list string) string {
	urls := strings.Split(list, ",")
	for i, raw := range urls {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil || u.User == nil {
			continue
		}
		if _, hasPassword := u.User.Password(); hasPassword {
			u.User = url.UserPassword(u.User.Username(), "MASKED")
		} else {
			u.User = url.User("MASKED")
		}
		urls[i] = u.String()
	}
	return strings.Join(urls, ",")
}

// fixAuth turns the marshalled Auth (with its untagged None field) back
// into the config form.
func fixAuth(n *yaml.Node) {
	var content []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Value == "none" {
			if v.Value == "true" {
				*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "none"}
				return
			}
			continue
		}
		if v.Value == "" && v.Kind == yaml.ScalarNode || v.Tag == "!!null" {
			continue
		}
		content = append(content, k, v)
	}
	n.Content = content
}
