// helm_render renders a Helm chart the way `helm template` does, for tests on machines without
// Helm (Debian 12 does not package it). It uses the engine Helm itself is built on: Go's
// text/template with the sprig function library and Helm's own additions (include, tpl,
// required, toYaml, fromYaml, toJson, fromJson, lookup), chart values coalesced with values
// files, .Files (symbolic links followed, as Helm does), .Capabilities and the chart's
// kubeVersion constraint. Rendering is strict (a missing value is an error, like
// `helm lint --strict`). Values schema checks are left to the caller.
//
//	helm_render --chart DIR [--values FILE]... [--release NAME] [--namespace NS]
//	            [--api-versions GROUP/VERSION]... [--kube-version vX.Y.Z] [--notes]
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	semver "github.com/Masterminds/semver"
	"github.com/Masterminds/sprig"
	"github.com/ghodss/yaml"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// Chart holds the Chart.yaml fields templates read, under the names Helm gives them.
type Chart struct {
	Name        string `json:"name"`
	Version     string `json:"version"`
	AppVersion  string `json:"appVersion"`
	Description string `json:"description"`
	Type        string `json:"type"`
	KubeVersion string `json:"kubeVersion"`
}

type Release struct {
	Name      string
	Namespace string
	Service   string
	IsInstall bool
	IsUpgrade bool
	Revision  int
}

type KubeVersion struct {
	Version string
	Major   string
	Minor   string
}

type APIVersions []string

func (a APIVersions) Has(v string) bool {
	for _, x := range a {
		if x == v {
			return true
		}
	}
	return false
}

type Capabilities struct {
	KubeVersion KubeVersion
	APIVersions APIVersions
}

// Files is .Files: the chart's files outside templates/, by path relative to the chart.
type Files map[string][]byte

func (f Files) Get(name string) string      { return string(f[name]) }
func (f Files) GetBytes(name string) []byte { return f[name] }

type TemplateInfo struct {
	Name     string
	BasePath string
}

func main() {
	var valueFiles, apiVersions listFlag
	chartDir := flag.String("chart", "", "chart directory")
	release := flag.String("release", "release-name", "release name")
	namespace := flag.String("namespace", "default", "release namespace")
	kubeVersion := flag.String("kube-version", "v1.30.0", "Kubernetes version for .Capabilities")
	notes := flag.Bool("notes", false, "render NOTES.txt instead of the manifests")
	flag.Var(&valueFiles, "values", "values file merged over the chart's values.yaml (repeatable)")
	flag.Var(&apiVersions, "api-versions", "API version the cluster serves (repeatable)")
	flag.Parse()
	if *chartDir == "" {
		fail(errors.New("--chart is required"))
	}
	out, err := render(*chartDir, valueFiles, *release, *namespace, *kubeVersion, apiVersions, *notes)
	if err != nil {
		fail(err)
	}
	fmt.Print(out)
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "helm_render: error: %v\n", err)
	os.Exit(1)
}

func render(chartDir string, valueFiles []string, release, namespace, kubeVersion string,
	apiVersions []string, notes bool) (string, error) {
	var chart Chart
	if err := readYAML(filepath.Join(chartDir, "Chart.yaml"), &chart); err != nil {
		return "", err
	}
	caps, err := capabilities(kubeVersion, apiVersions)
	if err != nil {
		return "", err
	}
	if err := checkKubeVersion(chart, caps.KubeVersion.Version); err != nil {
		return "", err
	}
	values, err := chartValues(chartDir, valueFiles)
	if err != nil {
		return "", err
	}
	files, templates, err := loadChart(chartDir, chart.Name)
	if err != nil {
		return "", err
	}
	top := map[string]interface{}{
		"Values":       values,
		"Chart":        chart,
		"Release":      Release{release, namespace, "Helm", true, false, 1},
		"Capabilities": caps,
		"Files":        files,
	}
	return execute(templates, top, chart.Name, notes)
}

func capabilities(version string, apiVersions []string) (Capabilities, error) {
	v, err := semver.NewVersion(version)
	if err != nil {
		return Capabilities{}, fmt.Errorf("--kube-version %q: %v", version, err)
	}
	builtin := []string{"v1", "apps/v1", "autoscaling/v2", "policy/v1"}
	return Capabilities{
		KubeVersion: KubeVersion{"v" + v.String(), fmt.Sprint(v.Major()), fmt.Sprint(v.Minor())},
		APIVersions: append(builtin, apiVersions...),
	}, nil
}

// Helm refuses to render a chart whose kubeVersion constraint the cluster does not meet.
func checkKubeVersion(chart Chart, version string) error {
	if chart.KubeVersion == "" {
		return nil
	}
	c, err := semver.NewConstraint(chart.KubeVersion)
	if err != nil {
		return fmt.Errorf("Chart.yaml kubeVersion %q: %v", chart.KubeVersion, err)
	}
	if !c.Check(semver.MustParse(version)) {
		return fmt.Errorf("chart requires kubeVersion %s, which is incompatible with Kubernetes %s",
			chart.KubeVersion, version)
	}
	return nil
}

func readYAML(file string, into interface{}) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(data, into); err != nil {
		return fmt.Errorf("%s: %v", file, err)
	}
	return nil
}

func chartValues(chartDir string, valueFiles []string) (map[string]interface{}, error) {
	values := map[string]interface{}{}
	if err := readYAML(filepath.Join(chartDir, "values.yaml"), &values); err != nil {
		return nil, err
	}
	for _, file := range valueFiles {
		user := map[string]interface{}{}
		if err := readYAML(file, &user); err != nil {
			return nil, err
		}
		values = coalesce(user, values)
	}
	return values, nil
}

// coalesce merges the defaults under the user's values as Helm does: maps merge key by key,
// anything else from the user wins, and a user null deletes the key.
func coalesce(user, defaults map[string]interface{}) map[string]interface{} {
	out := map[string]interface{}{}
	for k, v := range defaults {
		out[k] = v
	}
	for k, v := range user {
		if v == nil {
			delete(out, k)
			continue
		}
		um, uok := v.(map[string]interface{})
		dm, dok := out[k].(map[string]interface{})
		if uok && dok {
			out[k] = coalesce(um, dm)
		} else {
			out[k] = v
		}
	}
	return out
}

// loadChart reads templates/ into one template set (names "<chart>/templates/<file>", as in
// Helm) and every other file into .Files.
func loadChart(chartDir, chartName string) (Files, map[string]string, error) {
	files := Files{}
	templates := map[string]string{}
	root, err := filepath.EvalSymlinks(chartDir)
	if err != nil {
		return nil, nil, err
	}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		data, err := os.ReadFile(p) // follows symbolic links, as Helm's loader does
		if err != nil {
			return fmt.Errorf("%s: %v", rel, err)
		}
		if strings.HasPrefix(rel, "templates/") {
			templates[path.Join(chartName, rel)] = string(data)
		} else if rel != "Chart.yaml" && rel != "values.yaml" {
			files[rel] = data
		}
		return nil
	})
	return files, templates, err
}

func execute(sources map[string]string, top map[string]interface{}, chartName string,
	notes bool) (string, error) {
	root := template.New("gotpl").Option("missingkey=error")
	root.Funcs(funcMap(root))
	names := make([]string, 0, len(sources))
	for name := range sources {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if _, err := root.New(name).Parse(sources[name]); err != nil {
			return "", err
		}
	}
	var out strings.Builder
	for _, name := range names {
		base := path.Base(name)
		isNotes := base == "NOTES.txt"
		if strings.HasPrefix(base, "_") || isNotes != notes {
			continue
		}
		text, err := executeOne(root, name, top, chartName)
		if err != nil {
			return "", err
		}
		if strings.TrimSpace(text) == "" {
			continue
		}
		if notes {
			out.WriteString(text)
		} else {
			fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", name, strings.TrimSpace(text))
		}
	}
	return out.String(), nil
}

func executeOne(root *template.Template, name string, top map[string]interface{},
	chartName string) (string, error) {
	scope := map[string]interface{}{}
	for k, v := range top {
		scope[k] = v
	}
	scope["Template"] = TemplateInfo{Name: name, BasePath: path.Join(chartName, "templates")}
	var buf bytes.Buffer
	if err := root.ExecuteTemplate(&buf, name, scope); err != nil {
		return "", err
	}
	return buf.String(), nil
}

// funcMap is sprig's text functions less env/expandenv (Helm removes them) plus Helm's own.
func funcMap(root *template.Template) template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")
	f["toYaml"] = func(v interface{}) string {
		data, err := yaml.Marshal(v)
		if err != nil {
			return ""
		}
		return strings.TrimSuffix(string(data), "\n")
	}
	fromYaml := func(data []byte, v interface{}) error { return yaml.Unmarshal(data, v) }
	f["fromYaml"] = decodeMap(fromYaml)
	f["fromYamlArray"] = decodeArray(fromYaml)
	f["toJson"] = func(v interface{}) string {
		data, _ := json.Marshal(v)
		return string(data)
	}
	f["fromJson"] = decodeMap(json.Unmarshal)
	f["fromJsonArray"] = decodeArray(json.Unmarshal)
	f["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil || v == "" {
			return nil, errors.New(msg)
		}
		return v, nil
	}
	// No cluster to look objects up in: Helm's `template` returns an empty map too.
	f["lookup"] = func(apiVersion, kind, namespace, name string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil
	}
	f["include"] = func(name string, data interface{}) (string, error) {
		var buf bytes.Buffer
		err := root.ExecuteTemplate(&buf, name, data)
		return buf.String(), err
	}
	f["tpl"] = func(text string, data interface{}) (string, error) {
		t, err := root.Clone()
		if err != nil {
			return "", err
		}
		t, err = t.New("tpl").Parse(text)
		if err != nil {
			return "", err
		}
		var buf bytes.Buffer
		err = t.Execute(&buf, data)
		return buf.String(), err
	}
	return f
}

type unmarshal func([]byte, interface{}) error

// Helm's from* functions report a decoding error inside the result instead of failing.
func decodeMap(decode unmarshal) func(string) map[string]interface{} {
	return func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := decode([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
}

func decodeArray(decode unmarshal) func(string) []interface{} {
	return func(s string) []interface{} {
		var a []interface{}
		if err := decode([]byte(s), &a); err != nil {
			a = []interface{}{err.Error()}
		}
		return a
	}
}
