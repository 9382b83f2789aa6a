package releases

import (
	"bytes"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the `releases` section of a YAML configuration file: the
// release source and support policy that flags would otherwise give.
//
//	releases:
//	  github:
//	    url: https://ghe.example.com/api/v3/
//	    repos:
//	      arcagent: platform/arcagent
//	      Contoso.Monitoring.StatusReporter: contoso/status-reporter
//	  # or: catalog: {location: https://…/releases.sig.json, name: releases, threshold: 2}
//	  support_window: 12mo
//	  products:
//	    arcagent: {supported: ">=1.40.0"}
//	  include_prereleases: false
//	  cache: /var/cache/arcagent/releases
//	  wait_rate_limit: 15m
type Config struct {
	GitHub *struct {
		URL   string            `yaml:"url"`
		Repos map[string]string `yaml:"repos"`
	} `yaml:"github"`
	Catalog *struct {
		Location  string `yaml:"location"`
		Name      string `yaml:"name"`
		Threshold int    `yaml:"threshold"`
		TrustDir  string `yaml:"trust_dir"`
	} `yaml:"catalog"`
	SupportWindow string `yaml:"support_window"`
	Products      map[string]struct {
		SupportWindow string `yaml:"support_window"`
		Supported     string `yaml:"supported"`
	} `yaml:"products"`
	IncludePrereleases bool          `yaml:"include_prereleases"`
	Offline            bool          `yaml:"offline"`
	Cache              string        `yaml:"cache"`
	WaitRateLimit      time.Duration `yaml:"wait_rate_limit"`
}

// maxConfig bounds a configuration file.
const maxConfig = 1 << 20

// LoadConfig reads the `releases` section of a YAML file (other top-level
// sections are left to their owners). Unknown keys inside the section are
// refused, so that a typo does not silently drop a policy.
func LoadConfig(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, newErr(CodeBadSource, "release configuration "+path, err, "cannot read it")
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfig+1))
	if err != nil || len(data) > maxConfig {
		return nil, newErr(CodeBadSource, "release configuration "+path, err, "cannot read it (at most 1 MiB)")
	}
	c, err := ParseConfig(data)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Source = "release configuration " + path
		}
		return nil, err
	}
	return c, nil
}

// ParseConfig parses the `releases` section of a YAML document.
func ParseConfig(data []byte) (*Config, error) {
	var top map[string]yaml.Node
	if err := yaml.Unmarshal(data, &top); err != nil {
		return nil, newErr(CodeBadSource, "", nil, "not valid YAML: %v", err)
	}
	node, ok := top["releases"]
	if !ok {
		return nil, newErr(CodeBadSource, "", nil, "no `releases:` section")
	}
	raw, err := yaml.Marshal(&node)
	if err != nil {
		return nil, newErr(CodeBadSource, "", err, "the releases section cannot be read")
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, newErr(CodeBadSource, "", nil, "the releases section is not valid: %v", err)
	}
	if c.GitHub != nil && c.Catalog != nil {
		return nil, newErr(CodeBadSource, "", nil, "the releases section gives both github and catalog: keep one")
	}
	if c.SupportWindow != "" {
		if _, err := ParseWindow(c.SupportWindow); err != nil {
			return nil, newErr(CodeBadPolicy, "", err, "support_window")
		}
	}
	for p, pc := range c.Products {
		if pc.SupportWindow != "" {
			if _, err := ParseWindow(pc.SupportWindow); err != nil {
				return nil, newErr(CodeBadPolicy, "", err, "products.%s.support_window", p)
			}
		}
		if pc.Supported != "" {
			if _, err := ParseConstraint(pc.Supported); err != nil {
				return nil, newErr(CodeBadPolicy, "", err, "products.%s.supported %q", p, pc.Supported)
			}
		}
	}
	return &c, nil
}

// Flags renders the configuration as the equivalent flag values, in a
// stable order: repos as PRODUCT=OWNER/REPO, windows as [PRODUCT=]LENGTH,
// constraints as PRODUCT=CONSTRAINT. Flags given on the command line are
// applied after these, so they win.
func (c *Config) Flags() (repos, windows, supported []string) {
	if c.GitHub != nil {
		for p, r := range c.GitHub.Repos {
			repos = append(repos, p+"="+r)
		}
	}
	if c.SupportWindow != "" {
		windows = append(windows, c.SupportWindow)
	}
	for p, pc := range c.Products {
		if pc.SupportWindow != "" {
			windows = append(windows, p+"="+pc.SupportWindow)
		}
		if pc.Supported != "" {
			supported = append(supported, p+"="+strings.TrimSpace(pc.Supported))
		}
	}
	slices.Sort(repos)
	slices.Sort(windows)
	slices.Sort(supported)
	return repos, windows, supported
}
