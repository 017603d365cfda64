package runtime

import "go.starlark.net/starlark"

// Inventory is inventory(): it stands for every host of the session,
// those declared after it too. internal/nixgen encodes it when a build
// needs it, by which time the inventory is complete.
type Inventory struct{ s *Session }

// NewInventory returns the inventory of s.
func NewInventory(s *Session) *Inventory { return &Inventory{s} }

// Hosts are the hosts of the session so far.
func (i *Inventory) Hosts() []*Host { return i.s.Hosts() }

func (i *Inventory) String() string        { return "inventory()" }
func (i *Inventory) Type() string          { return "inventory" }
func (i *Inventory) Freeze()               {}
func (i *Inventory) Truth() starlark.Bool  { return starlark.True }
func (i *Inventory) Hash() (uint32, error) { return 0, nil }
