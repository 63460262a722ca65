package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/klog/v2"
)

// The simulated application metrics of kubesim's pods (kubesim/pod_metrics.py), served by the fake
// kubelet at the same path and driven by the same pod annotations, so an analysis test (and the
// Prometheus that scrapes it) runs unchanged on either cluster. Counters are derived from the time since
// the pod's Ready transition, so they only grow while the pod lives and a deleted pod's series vanish.
const (
	podMetricsPath        = "/kubesim/pod-metrics"
	podMetricsPrefix      = "realk8s pod metrics: "
	errorRateAnnotation   = "kubesim.io/error-rate"
	latencyAnnotation     = "kubesim.io/latency-ms"
	requestsPerSecond     = 10.0
	defaultLatencyMillis  = 20.0
	maxLatencyMillis      = 600_000.0
	metricsContentType    = "text/plain; version=0.0.4; charset=utf-8"
	podTemplateHashLabel  = "pod-template-hash"
	metricsRequestTimeout = 10 * time.Second
)

var latencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0}

// annotationFloat reads a numeric annotation as kubesim does: missing or unparsable -> def, non-finite
// -> def, otherwise clamped to [low, high].
func annotationFloat(pod *v1.Pod, key string, def, low, high float64) float64 {
	raw, ok := pod.Annotations[key]
	if !ok {
		return def
	}
	value, err := strconv.ParseFloat(strings.TrimSpace(raw), 64)
	if err != nil || math.IsNaN(value) || math.IsInf(value, 0) {
		return def
	}
	return math.Min(math.Max(value, low), high)
}

// readySince is when the pod turned Ready, or false while it is not Ready.
func readySince(pod *v1.Pod) (time.Time, bool) {
	for _, c := range pod.Status.Conditions {
		if c.Type == v1.PodReady {
			if c.Status != v1.ConditionTrue || c.LastTransitionTime.IsZero() {
				return time.Time{}, false
			}
			return c.LastTransitionTime.Time, true
		}
	}
	return time.Time{}, false
}

func promLabels(kv ...string) string {
	escape := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	parts := make([]string, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		parts = append(parts, fmt.Sprintf(`%s="%s"`, kv[i], escape.Replace(kv[i+1])))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// renderPodMetrics is the exposition text for pods at now (the same series and numbers as kubesim's).
func renderPodMetrics(pods []*v1.Pod, now time.Time) string {
	sorted := append([]*v1.Pod(nil), pods...)
	sort.Slice(sorted, func(i, j int) bool {
		if sorted[i].Namespace != sorted[j].Namespace {
			return sorted[i].Namespace < sorted[j].Namespace
		}
		return sorted[i].Name < sorted[j].Name
	})
	var requests, durations []string
	for _, pod := range sorted {
		since, ready := readySince(pod)
		if !ready || pod.DeletionTimestamp != nil {
			continue
		}
		base := []string{"namespace", pod.Namespace, "pod", pod.Name, "pod_template_hash", pod.Labels[podTemplateHashLabel]}
		with := func(kv ...string) string { return promLabels(append(append([]string(nil), base...), kv...)...) }
		elapsed := math.Max(0, float64(now.UnixNano()-since.UnixNano())/1e9)
		total := math.Floor(requestsPerSecond * elapsed)
		rate := annotationFloat(pod, errorRateAnnotation, 0, 0, 1)
		errs := math.Floor(total*rate + 0.5)
		requests = append(requests,
			fmt.Sprintf("http_requests_total%s %.0f", with("code", "200"), total-errs),
			fmt.Sprintf("http_requests_total%s %.0f", with("code", "500"), errs))
		mean := annotationFloat(pod, latencyAnnotation, defaultLatencyMillis, 0, maxLatencyMillis) / 1000
		for _, le := range latencyBuckets {
			share := 1.0
			if mean != 0 {
				share = math.Min(1, math.Max(0, (le-0.5*mean)/mean))
			}
			durations = append(durations, fmt.Sprintf("http_request_duration_seconds_bucket%s %.0f",
				with("le", strconv.FormatFloat(le, 'g', -1, 64)), math.Floor(total*share)))
		}
		durations = append(durations,
			fmt.Sprintf("http_request_duration_seconds_bucket%s %.0f", with("le", "+Inf"), total),
			fmt.Sprintf("http_request_duration_seconds_sum%s %.6f", with(), total*mean),
			fmt.Sprintf("http_request_duration_seconds_count%s %.0f", with(), total))
	}
	lines := []string{
		"# HELP http_requests_total Requests served by the simulated pod, by status code.",
		"# TYPE http_requests_total counter",
	}
	lines = append(lines, requests...)
	lines = append(lines,
		"# HELP http_request_duration_seconds Simulated request durations.",
		"# TYPE http_request_duration_seconds histogram")
	lines = append(lines, durations...)
	return strings.Join(lines, "\n") + "\n"
}

// servePodMetrics serves the pods' metrics on ln until ctx ends (optionally one namespace:
// ?namespace=NS, as kubesim's route takes it).
func servePodMetrics(ctx context.Context, ln net.Listener, pods corelisters.PodLister) {
	mux := http.NewServeMux()
	mux.HandleFunc(podMetricsPath, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		var list []*v1.Pod
		var err error
		if ns := r.URL.Query().Get("namespace"); ns != "" {
			list, err = pods.Pods(ns).List(labels.Everything())
		} else {
			list, err = pods.List(labels.Everything())
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", metricsContentType)
		_, _ = w.Write([]byte(renderPodMetrics(list, time.Now())))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: metricsRequestTimeout}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			klog.ErrorS(err, "pod metrics server stopped")
		}
	}()
}
