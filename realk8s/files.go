package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"k8s.io/client-go/tools/clientcmd"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
)

// dataDir is the on-disk state of one control plane: etcd, certificates, the admin token, the lock.
type dataDir struct {
	root      string
	temporary bool
	lock      *os.File
}

func openDataDir(path string) (*dataDir, error) {
	d := &dataDir{root: path}
	if path == "" {
		tmp, err := os.MkdirTemp("", "realk8s-")
		if err != nil {
			return nil, err
		}
		d.root, d.temporary = tmp, true
	} else {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, err
		}
		d.root = abs
		if err := os.MkdirAll(abs, 0o700); err != nil {
			return nil, fmt.Errorf("cannot create data dir %s: %v", abs, err)
		}
	}
	if err := d.acquireLock(); err != nil {
		d.cleanup()
		return nil, err
	}
	return d, nil
}

// acquireLock takes an exclusive flock on DIR/realk8s.lock: a second serve on one data dir would corrupt
// etcd's files. The kernel drops the lock when the process dies, so a crash never leaves a stale lock.
func (d *dataDir) acquireLock() error {
	f, err := os.OpenFile(d.path("realk8s.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(d.path("realk8s.lock"))
		_ = f.Close()
		pid := strings.TrimSpace(string(holder))
		if pid == "" {
			pid = "unknown"
		}
		return fmt.Errorf("data dir %s is in use by another realk8s serve (pid %s)", d.root, pid)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	d.lock = f
	return nil
}

func (d *dataDir) path(parts ...string) string {
	return filepath.Join(append([]string{d.root}, parts...)...)
}

func (d *dataDir) cleanup() {
	if d.lock != nil {
		_ = d.lock.Close()
		d.lock = nil
	}
	if d.temporary {
		_ = os.RemoveAll(d.root)
	}
}

// credentials are the serving certificate (with its CA), the service-account signing key and the admin
// bearer token. They are kept in the data dir so a restarted control plane accepts old kubeconfigs.
type credentials struct {
	certFile, keyFile, saKeyFile, tokenFile string
	caPEM                                   []byte
	token                                   string
}

func loadOrCreateCredentials(d *dataDir) (*credentials, error) {
	pki := d.path("pki")
	if err := os.MkdirAll(pki, 0o700); err != nil {
		return nil, err
	}
	c := &credentials{
		certFile:  filepath.Join(pki, "apiserver.crt"),
		keyFile:   filepath.Join(pki, "apiserver.key"),
		saKeyFile: filepath.Join(pki, "sa.key"),
		tokenFile: filepath.Join(pki, "tokens.csv"),
	}
	if !exists(c.certFile) || !exists(c.keyFile) {
		// Leaf + self-signed CA in one PEM chain; SANs cover 127.0.0.1 and localhost.
		certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey("127.0.0.1", []net.IP{net.ParseIP("127.0.0.1")}, []string{"localhost"})
		if err != nil {
			return nil, err
		}
		if err := certutil.WriteCert(c.certFile, certPEM); err != nil {
			return nil, err
		}
		if err := keyutil.WriteKey(c.keyFile, keyPEM); err != nil {
			return nil, err
		}
	}
	if _, _, err := keyutil.LoadOrGenerateKeyFile(c.saKeyFile); err != nil {
		return nil, err
	}
	if !exists(c.tokenFile) {
		buf := make([]byte, 24)
		if _, err := rand.Read(buf); err != nil {
			return nil, err
		}
		line := hex.EncodeToString(buf) + ",realk8s-admin,realk8s-admin,system:masters\n"
		if err := os.WriteFile(c.tokenFile, []byte(line), 0o600); err != nil {
			return nil, err
		}
	}
	raw, err := os.ReadFile(c.tokenFile)
	if err != nil {
		return nil, err
	}
	c.token = strings.SplitN(strings.TrimSpace(string(raw)), ",", 2)[0]
	if c.caPEM, err = os.ReadFile(c.certFile); err != nil {
		return nil, err
	}
	return c, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// writeKubeconfig writes the admin kubeconfig (CA data embedded, bearer token) atomically.
func writeKubeconfig(path, server string, c *credentials) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["realk8s"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: c.caPEM}
	cfg.AuthInfos["realk8s-admin"] = &clientcmdapi.AuthInfo{Token: c.token}
	cfg.Contexts["realk8s"] = &clientcmdapi.Context{Cluster: "realk8s", AuthInfo: "realk8s-admin", Namespace: "default"}
	cfg.CurrentContext = "realk8s"
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	tmp := path + ".tmp"
	if err := clientcmd.WriteToFile(*cfg, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// listenLoopback opens 127.0.0.1:port (0 = any free port) and turns "address in use" into one clear line.
func listenLoopback(port int, what string) (net.Listener, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("port %d on 127.0.0.1 (%s) is already in use", port, what)
		}
		return nil, fmt.Errorf("cannot listen on 127.0.0.1:%d (%s): %v", port, what, err)
	}
	return ln, nil
}

// freePort asks the kernel for a free loopback port (etcd opens its own listeners).
func freePort() (int, error) {
	ln, err := listenLoopback(0, "free port")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// auditPolicy logs every request but watches and lease renewals, at Metadata level (no bodies): tests read
// it to assert which writes a command made, as they do with kubesim's /kubesim/audit.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: None
  verbs: ["watch"]
- level: None
  resources:
  - group: "coordination.k8s.io"
    resources: ["leases"]
- level: None
  nonResourceURLs: ["/readyz*", "/healthz*", "/livez*", "/version", "/api", "/apis*", "/openapi*"]
- level: Metadata
`
