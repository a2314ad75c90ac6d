package wiegand

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// Pause is the silence that ParseBits puts before a bit for each '|'.
const Pause = time.Second

// Edge is one pulse played by Edges: its line (0 for D0, 1 for D1) and the
// silence before it.
type Edge struct {
	Line  int
	After time.Duration
}

// Edges is an in-memory EdgeSource for tests. It plays its edges in order in
// virtual time: a wait whose timeout is shorter than the silence before the
// next edge reports NoEdge at once and uses that much of the silence up.
//
// When its edges run out, an open Edges behaves like a silent line: it waits
// in real time, up to the timeout, for edges added with Add. A closed Edges
// reports one last NoEdge (the line falls silent, ending any frame) and
// then io.EOF. It is safe for concurrent use.
type Edges struct {
	mu     sync.Mutex
	edges  []Edge
	waited time.Duration // silence before edges[0] already reported
	closed bool
	ended  bool          // the last NoEdge of a closed Edges was reported
	added  chan struct{} // closed and replaced by Add and Close
}

var _ EdgeSource = (*Edges)(nil)

// NewEdges returns an open Edges that plays edges.
func NewEdges(edges ...Edge) *Edges {
	return &Edges{edges: edges, added: make(chan struct{})}
}

// ParseBits returns an open Edges that plays a string of bits: '0' is a
// pulse on D0 and '1' a pulse on D1, interval after the previous pulse; each
// '|' adds a Pause before the next pulse; spaces and '_' are ignored.
func ParseBits(bits string, interval time.Duration) (*Edges, error) {
	edges, err := parseBits(bits, interval)
	if err != nil {
		return nil, err
	}
	return NewEdges(edges...), nil
}

// AddBits adds the pulses of a bit string, in ParseBits' syntax.
func (e *Edges) AddBits(bits string, interval time.Duration) error {
	edges, err := parseBits(bits, interval)
	if err != nil {
		return err
	}
	e.Add(edges...)
	return nil
}

func parseBits(bits string, interval time.Duration) ([]Edge, error) {
	var edges []Edge
	after := interval
	for i, r := range bits {
		switch r {
		case '0', '1':
			edges = append(edges, Edge{Line: int(r - '0'), After: after})
			after = interval
		case '|':
			after += Pause
		case ' ', '_':
		default:
			return nil, fmt.Errorf("wiegand: bit string: %q at %d", r, i)
		}
	}
	return edges, nil
}

// Add appends edges to play.
func (e *Edges) Add(edges ...Edge) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.edges = append(e.edges, edges...)
	e.wake()
}

// Close makes Edges report io.EOF once its edges are played.
func (e *Edges) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	e.wake()
	return nil
}

// Len returns how many edges are left to play.
func (e *Edges) Len() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.edges)
}

func (e *Edges) wake() {
	close(e.added)
	e.added = make(chan struct{})
}

// WaitForEdge implements EdgeSource.
func (e *Edges) WaitForEdge(timeout time.Duration) (int, error) {
	e.mu.Lock()
	for len(e.edges) == 0 {
		if e.closed {
			defer e.mu.Unlock()
			if !e.ended {
				e.ended = true
				return NoEdge, nil
			}
			return NoEdge, io.EOF
		}
		added := e.added
		e.mu.Unlock()
		t := time.NewTimer(timeout)
		select {
		case <-added:
			t.Stop()
		case <-t.C:
			return NoEdge, nil
		}
		e.mu.Lock()
	}
	defer e.mu.Unlock()
	next := e.edges[0]
	if timeout > 0 && next.After-e.waited > timeout {
		e.waited += timeout
		return NoEdge, nil
	}
	e.edges = e.edges[1:]
	e.waited = 0
	return next.Line, nil
}
