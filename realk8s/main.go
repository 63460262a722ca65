// Command realk8s runs a real Kubernetes control plane in one process for tests and the local dev stack:
// embedded etcd, the real kube-apiserver and kube-controller-manager built from k8s.io/kubernetes, and a
// fake kubelet that honours kubesim's pod-template annotations (readiness, crash loops, and the simulated
// application metrics it serves at /kubesim/pod-metrics).
//
//	realk8s serve --kubeconfig PATH [--port P] [--pod-metrics-port P] [--ready-delay S] [--data-dir DIR] [--audit-log FILE]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"
)

const readyPrefix = "realk8s ready: "

type serveOptions struct {
	kubeconfig     string
	port           int
	podMetricsPort int
	readyDelay     time.Duration
	dataDir        string
	auditLog       string
	exitWithParent bool
	startTimeout   time.Duration
}

func main() {
	if len(os.Args) < 2 || os.Args[1] != "serve" {
		fmt.Fprintln(os.Stderr, "usage: realk8s serve --kubeconfig PATH [--port P] [--pod-metrics-port P] [--ready-delay SECONDS] [--data-dir DIR]")
		os.Exit(2)
	}
	opts, err := parseServe(os.Args[2:])
	if err != nil {
		fail(err)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		// A soft limit keeps the heap (mostly OpenAPI models and watch caches) from growing into the GC's
		// default 100% headroom on a shared test machine.
		debug.SetMemoryLimit(768 << 20)
	}
	if err := serve(opts); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "realk8s: %v\n", err)
	os.Exit(1)
}

func parseServe(args []string) (serveOptions, error) {
	fs := flag.NewFlagSet("realk8s serve", flag.ContinueOnError)
	var o serveOptions
	var readyDelay float64
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "where to write the admin kubeconfig (required)")
	fs.IntVar(&o.port, "port", 0, "kube-apiserver port on 127.0.0.1 (0 picks a free one)")
	fs.IntVar(&o.podMetricsPort, "pod-metrics-port", 0, "port on 127.0.0.1 of the pods' simulated metrics (0 picks a free one)")
	fs.Float64Var(&readyDelay, "ready-delay", 0.5, "seconds from pod start to Ready (pod annotation kubesim.io/ready-delay wins)")
	fs.StringVar(&o.dataDir, "data-dir", "", "keep etcd data, certificates and token here (default: a temporary dir removed on exit)")
	fs.StringVar(&o.auditLog, "audit-log", "", "write the apiserver audit log (writes only, Metadata level) to this file")
	fs.BoolVar(&o.exitWithParent, "exit-with-parent", true, "exit when the parent process dies")
	fs.DurationVar(&o.startTimeout, "start-timeout", 180*time.Second, "give up if the control plane is not ready by then")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.kubeconfig == "" {
		return o, errors.New("--kubeconfig is required")
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.port < 0 || o.port > 65535 {
		return o, fmt.Errorf("--port %d is not a TCP port", o.port)
	}
	if o.podMetricsPort < 0 || o.podMetricsPort > 65535 {
		return o, fmt.Errorf("--pod-metrics-port %d is not a TCP port", o.podMetricsPort)
	}
	if readyDelay < 0 {
		return o, errors.New("--ready-delay must not be negative")
	}
	o.readyDelay = time.Duration(readyDelay * float64(time.Second))
	return o, nil
}

// signalContext ends on SIGTERM/SIGINT, and (unless told otherwise) when the parent process dies, so a
// test runner that is killed leaves no control plane behind. Polling getppid is used rather than
// PR_SET_PDEATHSIG, whose signal fires when the *thread* that forked us exits (Python spawns from threads).
func signalContext(exitWithParent bool) (context.Context, context.CancelFunc) {
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	if exitWithParent {
		parent := os.Getppid()
		go func() {
			t := time.NewTicker(250 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if os.Getppid() != parent {
						fmt.Fprintln(os.Stderr, "realk8s: parent process exited; shutting down")
						cancel()
						return
					}
				}
			}
		}()
	}
	return ctx, cancel
}
