// Command go-verifier checks a checkpoint note with an independent C2SP implementation:
// golang.org/x/mod/sumdb/note for the signed note and the log's Ed25519 key, and
// github.com/transparency-dev/formats/note for the witness's cosignature/v1.
//
// Usage: go-verifier <note file> <log vkey> <witness vkey>
// Exit 0 and print the cosignature time when both signatures verify; exit 1 otherwise.
package main

import (
	"fmt"
	"os"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: go-verifier <note file> <log vkey> <witness vkey>")
		os.Exit(2)
	}
	msg, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	logV, err := note.NewVerifier(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "log key:", err)
		os.Exit(2)
	}
	witnessV, err := fnote.NewVerifierForCosignatureV1(os.Args[3])
	if err != nil {
		fmt.Fprintln(os.Stderr, "witness key:", err)
		os.Exit(2)
	}
	n, err := note.Open(msg, note.VerifierList(logV, witnessV))
	if err != nil {
		fmt.Fprintln(os.Stderr, "rejected:", err)
		os.Exit(1)
	}
	seen := map[string]bool{}
	for _, s := range n.Sigs {
		seen[s.Name] = true
		if s.Name == witnessV.Name() && s.Hash == witnessV.KeyHash() {
			t, err := fnote.CoSigV1Timestamp(s)
			if err != nil {
				fmt.Fprintln(os.Stderr, "rejected:", err)
				os.Exit(1)
			}
			fmt.Printf("cosigned by %s at %d\n", s.Name, t.Unix())
		}
	}
	if !seen[logV.Name()] || !seen[witnessV.Name()] {
		fmt.Fprintln(os.Stderr, "rejected: missing the log signature or the cosignature")
		os.Exit(1)
	}
	fmt.Printf("verified %s\n", logV.Name())
}
