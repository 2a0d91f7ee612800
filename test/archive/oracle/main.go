// oracle: containerd 1.6's archive.Apply as a command, for differential tests.
//
//	oracle ROOT [overlay [PARENT...]] < layer.tar
//
// Reads the (uncompressed) layer from stdin, applies it to ROOT and prints
// the size containerd reports; "error: ..." on stderr and exit 1 on failure.
// Built by test/archive/util.ts with GO111MODULE=off against the Debian
// golang-github-containerd-containerd-dev sources.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/containerd/containerd/archive"
)

func main() {
	root := os.Args[1]
	var opts []archive.ApplyOpt
	if len(os.Args) > 2 && os.Args[2] == "overlay" {
		opts = append(opts, archive.WithConvertWhiteout(archive.OverlayConvertWhiteout))
		if len(os.Args) > 3 {
			opts = append(opts, archive.WithParents(os.Args[3:]))
		}
	}
	n, err := archive.Apply(context.Background(), root, os.Stdin, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	fmt.Println(n)
}
