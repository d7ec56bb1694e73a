package main

// A JSON codec for the twin documents of types.go, without reflection: the
// plugin runs in a single-threaded wasm heap where encoding/json's
// reflection cost most of a twin update. encode.go has an encoder and
// decode.go a decoder per document type, scan.go the decoder's scanner;
// this file has the rules they keep and what the encoders share.
//
// The codec is encoding/json's, byte for byte and rule for rule, as
// codec_test.go checks on many inputs and FuzzCodec on any:
//   - encoding: struct fields in declaration order, map keys sorted by
//     their bytes, strings escaped as json.Marshal escapes them (<, >, &,
//     U+2028 and U+2029 too; invalid UTF-8 becomes \ufffd);
//   - decoding: keys match field names exactly or, failing that, case
//     insensitively (with encoding/json's folding of ſ and the Kelvin sign);
//     unknown fields are skipped; the last of repeated keys wins, decoding
//     into what the earlier one set; null leaves a string, number or struct
//     as it is and sets a pointer, map or slice to nil; invalid UTF-8 and
//     lone surrogates become U+FFFD; any syntax error anywhere, a value of
//     the wrong kind, or a number that is not an int64 fails the whole
//     document, with an error that says where and what.
//
// It allocates little: the encoders append to a buffer the caller reuses
// (publish.go's doc), and a decoded property takes one allocation for all
// its parts (decode.go's twinParts); a stored device's strings share the
// bytes read from the KV store.

import (
	"slices"
	"unicode/utf8"
)

// hexDigits are the digits of \u escapes.
const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaped as encoding/json
// escapes it.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	i := 0
	for i < len(s) && safe[s[i]] {
		i++
	}
	if i == len(s) {
		b = append(b, s...)
		return append(b, '"')
	}
	start := 0
	for i < len(s) {
		c := s[i]
		if safe[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// safe is true for the bytes appendString writes as they are.
var safe = func() (t [256]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendKey appends a member's key and its colon.
func appendKey(b []byte, key string) []byte {
	return append(appendString(b, key), ':')
}

// appendBool appends true or false.
func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, "true"...)
	}
	return append(b, "false"...)
}

// keyScratch holds map keys while they are sorted; an encoder nested in
// another uses the part after its caller's.
var keyScratch []string

// sortKeys returns m's keys sorted, in keyScratch; the caller gives them
// back with releaseKeys once done with them.
func sortKeys[V any](m map[string]V) []string {
	start := len(keyScratch)
	for k := range m {
		keyScratch = append(keyScratch, k)
	}
	keys := keyScratch[start:]
	slices.Sort(keys)
	return keys
}

// releaseKeys gives back the keys sortKeys returned.
func releaseKeys(keys []string) {
	clear(keys)
	keyScratch = keyScratch[:len(keyScratch)-len(keys)]
}
