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

	"github.com/edgehost/edgehost/sdk/jsonlite"
)

// appendKey appends a member's key and its colon.
func appendKey(b []byte, key string) []byte {
	return append(jsonlite.AppendString(b, key), ':')
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
