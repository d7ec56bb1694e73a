package main

// wrapped is an error with context, as fmt.Errorf makes one with %w:
// fmt is left out of the plugin, where it costs a few hundred KB of
// module and four times that in machine code.
type wrapped struct {
	text string
	errs []error
}

func (e *wrapped) Error() string   { return e.text }
func (e *wrapped) Unwrap() []error { return e.errs }

// wrap returns err with context before its text.
func wrap(context string, err error) error {
	return &wrapped{context + err.Error(), []error{err}}
}
