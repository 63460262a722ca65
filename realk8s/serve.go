package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.etcd.io/etcd/server/v3/embed"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	basecompatibility "k8s.io/component-base/compatibility"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/klog/v2"
	apiapp "k8s.io/kubernetes/cmd/kube-apiserver/app"
	apioptions "k8s.io/kubernetes/cmd/kube-apiserver/app/options"
	kcmapp "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	kcmoptions "k8s.io/kubernetes/cmd/kube-controller-manager/app/options"
)

// The controllers a rollout depends on; node lifecycle is left out on purpose (it would taint the fake
// node, which sends no heartbeats, and evict its pods).
var controllers = []string{
	"deployment-controller",
	"replicaset-controller",
	"endpoints-controller",
	"endpointslice-controller",
	"garbage-collector-controller",
	"namespace-controller",
	"serviceaccount-controller",
}

func serve(o serveOptions) error {
	ctx, cancel := signalContext(o.exitWithParent)
	defer cancel()

	d, err := openDataDir(o.dataDir)
	if err != nil {
		return err
	}
	defer d.cleanup()

	apiListener, err := listenLoopback(o.port, "kube-apiserver")
	if err != nil {
		return err
	}
	apiPort := apiListener.Addr().(*net.TCPAddr).Port
	metricsListener, err := listenLoopback(o.podMetricsPort, "pod metrics")
	if err != nil {
		_ = apiListener.Close()
		return err
	}
	server := "https://127.0.0.1:" + strconv.Itoa(apiPort)

	creds, err := loadOrCreateCredentials(d)
	if err != nil {
		return fmt.Errorf("cannot write certificates and token: %v", err)
	}
	// KCM and the fake kubelet read a kubeconfig of their own, so the user's file can be removed freely.
	internalKubeconfig := d.path("admin.kubeconfig")
	if err := writeKubeconfig(internalKubeconfig, server, creds); err != nil {
		return err
	}

	started := time.Now()
	etcd, etcdURL, err := startEtcd(d)
	if err != nil {
		return fmt.Errorf("etcd: %v", err)
	}
	defer etcd.Close()

	apiDone := make(chan error, 1)
	if err := startAPIServer(ctx, o, d, creds, etcdURL, apiListener, apiDone); err != nil {
		return fmt.Errorf("kube-apiserver: %v", err)
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", internalKubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 500, 1000
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}

	startCtx, startCancel := context.WithTimeout(ctx, o.startTimeout)
	defer startCancel()
	if err := waitReadyz(startCtx, client, apiDone); err != nil {
		return err
	}
	kcmDone := make(chan error, 1)
	if err := startControllerManager(ctx, internalKubeconfig, kcmDone); err != nil {
		return fmt.Errorf("kube-controller-manager: %v", err)
	}
	kubelet := newFakeKubelet(client, o.readyDelay)
	if err := kubelet.start(ctx); err != nil {
		return fmt.Errorf("fake kubelet: %v", err)
	}
	servePodMetrics(ctx, metricsListener, kubelet.pods)
	if err := waitDefaultServiceAccount(startCtx, client, apiDone, kcmDone); err != nil {
		return err
	}
	if err := writeKubeconfig(o.kubeconfig, server, creds); err != nil {
		return fmt.Errorf("cannot write kubeconfig %s: %v", o.kubeconfig, err)
	}
	klog.InfoS("realk8s ready", "server", server, "startup", time.Since(started))
	// The metrics line comes first: a reader that saw the ready line finds it already written.
	fmt.Fprintf(os.Stdout, "%shttp://%s%s\n", podMetricsPrefix, metricsListener.Addr(), podMetricsPath)
	fmt.Fprintf(os.Stdout, "%s%s\n", readyPrefix, server)

	select {
	case <-ctx.Done():
	case err := <-apiDone:
		return fmt.Errorf("kube-apiserver stopped: %v", err)
	case err := <-kcmDone:
		return fmt.Errorf("kube-controller-manager stopped: %v", err)
	}
	// The apiserver drains on its own context; etcd closes after it (deferred). KCM ends with the process.
	select {
	case <-apiDone:
	case <-time.After(15 * time.Second):
		klog.Warning("kube-apiserver did not stop within 15s")
	}
	return nil
}

func startEtcd(d *dataDir) (*embed.Etcd, string, error) {
	clientPort, err := freePort()
	if err != nil {
		return nil, "", err
	}
	peerPort, err := freePort()
	if err != nil {
		return nil, "", err
	}
	cfg := embed.NewConfig()
	cfg.Name = "realk8s"
	cfg.Dir = d.path("etcd")
	cfg.UnsafeNoFsync = true // test data: speed over durability
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{d.path("etcd.log")}
	client := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(clientPort)}
	peer := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(peerPort)}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.AutoCompactionMode = "periodic"
	cfg.AutoCompactionRetention = "5m"
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, "", err
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Server.Stop()
		return nil, "", errors.New("not ready after 60s")
	}
	return e, client.String(), nil
}

func startAPIServer(ctx context.Context, o serveOptions, d *dataDir, c *credentials, etcdURL string,
	ln net.Listener, done chan<- error) error {
	s := apioptions.NewServerRunOptions()
	fs := pflag.NewFlagSet("kube-apiserver", pflag.ContinueOnError)
	for _, f := range s.Flags().FlagSets {
		fs.AddFlagSet(f)
	}
	args := []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port),
		// The `kubernetes` Service's Endpoints would point at loopback, which validation rejects.
		"--endpoint-reconciler-type=none",
		"--tls-cert-file=" + c.certFile,
		"--tls-private-key-file=" + c.keyFile,
		"--cert-dir=" + d.path("pki"),
		"--service-cluster-ip-range=10.96.0.0/16",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + c.saKeyFile,
		"--service-account-signing-key-file=" + c.saKeyFile,
		"--token-auth-file=" + c.tokenFile,
		"--authorization-mode=RBAC",
		"--allow-privileged=true",
		"--shutdown-delay-duration=0s",
		"--profiling=false",
	}
	if o.auditLog != "" {
		policy := d.path("audit-policy.yaml")
		if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
			return err
		}
		args = append(args, "--audit-policy-file="+policy, "--audit-log-path="+o.auditLog,
			"--audit-log-format=json", "--audit-log-maxbackup=1", "--audit-log-maxsize=200")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	s.SecureServing.Listener = ln
	registry := s.GenericServerRunOptions.ComponentGlobalsRegistry
	if err := registry.Set(); err != nil {
		return err
	}
	fg := registry.FeatureGateFor(basecompatibility.DefaultKubeComponent)
	if err := logsapi.ValidateAndApply(s.Logs, fg); err != nil {
		return err
	}
	// KCM shares the process-wide logging setup; a second identical apply must not fail.
	logsapi.ReapplyHandling = logsapi.ReapplyHandlingIgnoreUnchanged
	completed, err := s.Complete(ctx)
	if err != nil {
		return err
	}
	if errs := completed.Validate(); len(errs) > 0 {
		return errors.Join(errs...)
	}
	go func() { done <- apiapp.Run(ctx, completed) }()
	return nil
}

func startControllerManager(ctx context.Context, kubeconfig string, done chan<- error) error {
	s, err := kcmoptions.NewKubeControllerManagerOptions()
	if err != nil {
		return err
	}
	fs := pflag.NewFlagSet("kube-controller-manager", pflag.ContinueOnError)
	known, disabled, aliases := kcmapp.KnownControllers(), kcmapp.ControllersDisabledByDefault(), kcmapp.ControllerAliases()
	nfs := s.Flags(known, disabled, aliases)
	for _, f := range nfs.FlagSets {
		fs.AddFlagSet(f)
	}
	s.ParsedFlags = &nfs
	args := []string{
		"--kubeconfig=" + kubeconfig,
		"--leader-elect=false",
		"--use-service-account-credentials=false",
		"--secure-port=0",
		"--controllers=" + strings.Join(controllers, ","),
		"--kube-api-qps=500",
		"--kube-api-burst=1000",
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := s.Config(ctx, known, disabled, aliases)
	if err != nil {
		return err
	}
	go func() { done <- kcmapp.Run(ctx, c.Complete()) }()
	return nil
}

// waitReadyz polls /readyz with the admin token (anonymous probes get 403 while RBAC bootstraps).
func waitReadyz(ctx context.Context, client kubernetes.Interface, apiDone <-chan error) error {
	var last string
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		select {
		case err := <-apiDone:
			return false, fmt.Errorf("kube-apiserver exited during start-up: %v", err)
		default:
		}
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			last = strings.TrimSpace(string(body))
			if last == "" {
				last = err.Error()
			}
			return false, nil
		}
		return true, nil
	})
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("kube-apiserver not ready in time (last /readyz: %s)", lastLine(last))
	}
	return err
}

func waitDefaultServiceAccount(ctx context.Context, client kubernetes.Interface, apiDone, kcmDone <-chan error) error {
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		select {
		case err := <-apiDone:
			return false, fmt.Errorf("kube-apiserver exited during start-up: %v", err)
		case err := <-kcmDone:
			return false, fmt.Errorf("kube-controller-manager exited during start-up: %v", err)
		default:
		}
		_, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, nil
	})
	if err != nil && ctx.Err() != nil {
		return errors.New("the default ServiceAccount was not created in time")
	}
	return err
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], "failed") {
			return strings.TrimSpace(lines[i])
		}
	}
	return strings.TrimSpace(lines[len(lines)-1])
}
