package swarm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/swarm"
	dc "github.com/ory/dockertest/v3/docker"
)

// engine speaks the swarm half of the Docker engine API (services, tasks,
// nodes, swarm membership), which the dockertest client lacks, over that
// client's own HTTP transport: the same socket, the same pinned API
// version. Containers, networks and volumes go through the dockertest
// client itself.
type engine struct {
	http *http.Client
	base string // "http://unix.sock/v1.41" or "https://host:2376/v1.41"
}

var (
	// errNotFound is an engine 404.
	errNotFound = errors.New("swarm: not found")
	// errNoSwarm is an engine 503: the engine is in no swarm (or not a
	// manager of one), so it has no services.
	errNoSwarm = errors.New("swarm: the engine is not a swarm manager")
)

func newEngine(client *dc.Client, endpoint, api string) (*engine, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("swarm: engine endpoint %q: %w", endpoint, err)
	}
	base := ""
	switch u.Scheme {
	case "unix":
		base = "http://unix.sock"
	case "tcp", "http":
		base = "http://" + u.Host
		if client.TLSConfig != nil {
			base = "https://" + u.Host
		}
	case "https":
		base = "https://" + u.Host
	default:
		return nil, fmt.Errorf("swarm: engine endpoint %q: unsupported scheme", endpoint)
	}
	if api != "" {
		base += "/v" + api
	}
	return &engine{http: client.HTTPClient, base: base}, nil
}

// call sends a JSON request and decodes a JSON answer into out (when not
// nil). Answers over 8 MiB are refused.
func (e *engine) call(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	u := e.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return fmt.Errorf("swarm: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("swarm: %s %s: %w", method, path, err)
	}
	if resp.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%w: %s %s: %s", errNotFound, method, path, message(data))
	}
	if resp.StatusCode == http.StatusServiceUnavailable {
		return fmt.Errorf("%w: %s %s: %s", errNoSwarm, method, path, message(data))
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("swarm: %s %s: %s: %s", method, path, resp.Status, message(data))
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("swarm: %s %s: decode: %w", method, path, err)
	}
	return nil
}

// message extracts the engine's {"message": ...} from an error body.
func message(data []byte) string {
	var m struct{ Message string }
	if json.Unmarshal(data, &m) == nil && m.Message != "" {
		return m.Message
	}
	return strings.TrimSpace(string(data))
}

// info is the part of /info the runtime needs.
type info struct {
	Name  string
	Swarm swarm.Info
}

func (e *engine) info(ctx context.Context) (info, error) {
	var i info
	err := e.call(ctx, http.MethodGet, "/info", nil, nil, &i)
	return i, err
}

func (e *engine) initSwarm(ctx context.Context, addr string, labels map[string]string) error {
	req := swarm.InitRequest{ListenAddr: "0.0.0.0:2377", AdvertiseAddr: addr, Spec: swarm.Spec{Annotations: swarm.Annotations{Labels: labels}}}
	var id string
	return e.call(ctx, http.MethodPost, "/swarm/init", nil, req, &id)
}

func (e *engine) leaveSwarm(ctx context.Context) error {
	return e.call(ctx, http.MethodPost, "/swarm/leave", url.Values{"force": {"true"}}, nil, nil)
}

func (e *engine) nodes(ctx context.Context) ([]swarm.Node, error) {
	var out []swarm.Node
	err := e.call(ctx, http.MethodGet, "/nodes", nil, nil, &out)
	return out, err
}

func (e *engine) createService(ctx context.Context, spec swarm.ServiceSpec) (string, error) {
	var out swarm.ServiceCreateResponse
	if err := e.call(ctx, http.MethodPost, "/services/create", nil, spec, &out); err != nil {
		return "", err
	}
	return out.ID, nil
}

func (e *engine) service(ctx context.Context, id string) (swarm.Service, error) {
	var out swarm.Service
	err := e.call(ctx, http.MethodGet, "/services/"+url.PathEscape(id), nil, nil, &out)
	return out, err
}

func (e *engine) updateService(ctx context.Context, s swarm.Service) error {
	q := url.Values{"version": {strconv.FormatUint(s.Version.Index, 10)}}
	return e.call(ctx, http.MethodPost, "/services/"+url.PathEscape(s.ID)+"/update", q, s.Spec, nil)
}

func (e *engine) removeService(ctx context.Context, id string) error {
	return e.call(ctx, http.MethodDelete, "/services/"+url.PathEscape(id), nil, nil, nil)
}

// filters encodes the engine's filter map: {"label": {"a=b": true}}.
func filters(kv ...string) url.Values {
	m := map[string]map[string]bool{}
	for i := 0; i+1 < len(kv); i += 2 {
		if m[kv[i]] == nil {
			m[kv[i]] = map[string]bool{}
		}
		m[kv[i]][kv[i+1]] = true
	}
	b, _ := json.Marshal(m)
	return url.Values{"filters": {string(b)}}
}

func (e *engine) services(ctx context.Context, kv ...string) ([]swarm.Service, error) {
	var out []swarm.Service
	err := e.call(ctx, http.MethodGet, "/services", filters(kv...), nil, &out)
	return out, err
}

func (e *engine) tasks(ctx context.Context, kv ...string) ([]swarm.Task, error) {
	var out []swarm.Task
	err := e.call(ctx, http.MethodGet, "/tasks", filters(kv...), nil, &out)
	return out, err
}

// createOverlay creates an attachable overlay network: standalone
// containers (a user's debugging shell, a load generator started by hand)
// can join the run's services.
func (e *engine) createOverlay(ctx context.Context, name string, labels map[string]string) (string, error) {
	req := map[string]any{"Name": name, "Driver": "overlay", "Attachable": true, "Labels": labels, "CheckDuplicate": true}
	var out struct{ ID string }
	if err := e.call(ctx, http.MethodPost, "/networks/create", nil, req, &out); err != nil {
		return "", err
	}
	return out.ID, nil
}
