package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// The pod-template annotations kubesim's kubelet honours (kubesim/controllers/kubelet.py); the same test
// runs unchanged on either cluster.
const (
	nodeName             = "realk8s-node"
	hostIP               = "172.18.0.2"
	readyDelayAnnotation = "kubesim.io/ready-delay"
	neverReadyAnnotation = "kubesim.io/never-ready"
	crashLoopAnnotation  = "kubesim.io/crash-loop"
	crashBackoffCap      = 5 // back-off = base * 2**min(restarts, cap)
	workers              = 8
)

// fakeKubelet is the scheduler and kubelet of one fake Node: it binds pods, reports them Running with a
// pod IP, then Ready after the ready delay, and removes terminating pods at once.
type fakeKubelet struct {
	client     kubernetes.Interface
	readyDelay time.Duration
	pods       corelisters.PodLister
	queue      workqueue.TypedRateLimitingInterface[string]
	scheduler  record.EventRecorder
	kubelet    record.EventRecorder

	mu        sync.Mutex
	started   map[types.UID]time.Time
	nextCrash map[types.UID]time.Time
	ips       map[string]bool
	nextIP    int
}

func newFakeKubelet(client kubernetes.Interface, readyDelay time.Duration) *fakeKubelet {
	return &fakeKubelet{
		client:     client,
		readyDelay: readyDelay,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "fake-kubelet"}),
		started:   map[types.UID]time.Time{},
		nextCrash: map[types.UID]time.Time{},
		ips:       map[string]bool{},
	}
}

func (k *fakeKubelet) start(ctx context.Context) error {
	if err := k.registerNode(ctx); err != nil {
		return err
	}
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: k.client.CoreV1().Events("")})
	k.scheduler = broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: "default-scheduler"})
	k.kubelet = broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: "kubelet", Host: nodeName})

	factory := informers.NewSharedInformerFactory(k.client, 0)
	informer := factory.Core().V1().Pods()
	k.pods = informer.Lister()
	_, err := informer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			pod := obj.(*v1.Pod)
			k.markIP(pod.Status.PodIP)
			k.enqueue(pod)
		},
		UpdateFunc: func(_, obj any) { k.enqueue(obj.(*v1.Pod)) },
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if pod, ok := obj.(*v1.Pod); ok {
				k.forget(pod)
			}
		},
	})
	if err != nil {
		return err
	}
	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("%v informer did not sync", typ)
		}
	}
	go func() {
		<-ctx.Done()
		k.queue.ShutDown()
	}()
	for i := 0; i < workers; i++ {
		go k.worker(ctx)
	}
	return nil
}

func (k *fakeKubelet) registerNode(ctx context.Context) error {
	node := &v1.Node{ObjectMeta: metav1.ObjectMeta{
		Name:   nodeName,
		Labels: map[string]string{"kubernetes.io/hostname": nodeName, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"},
	}}
	created, err := k.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		created, err = k.client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	}
	if err != nil {
		return err
	}
	now := metav1.Now()
	capacity := v1.ResourceList{
		v1.ResourceCPU:    resource.MustParse("64"),
		v1.ResourceMemory: resource.MustParse("256Gi"),
		v1.ResourcePods:   resource.MustParse("10000"),
	}
	created.Status = v1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity,
		Phase:       v1.NodeRunning,
		Conditions: []v1.NodeCondition{{
			Type: v1.NodeReady, Status: v1.ConditionTrue, Reason: "KubeletReady",
			Message: "kubelet is posting ready status", LastHeartbeatTime: now, LastTransitionTime: now,
		}},
		Addresses: []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: hostIP}, {Type: v1.NodeHostName, Address: nodeName}},
		NodeInfo: v1.NodeSystemInfo{
			KubeletVersion: "v1.37.2", OperatingSystem: "linux", Architecture: "amd64",
			ContainerRuntimeVersion: "fake://realk8s",
		},
	}
	_, err = k.client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{})
	return err
}

func (k *fakeKubelet) enqueue(pod *v1.Pod) {
	key, err := cache.MetaNamespaceKeyFunc(pod)
	if err == nil {
		k.queue.Add(key)
	}
}

func (k *fakeKubelet) forget(pod *v1.Pod) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.started, pod.UID)
	delete(k.nextCrash, pod.UID)
	delete(k.ips, pod.Status.PodIP)
}

func (k *fakeKubelet) markIP(ip string) {
	if ip == "" {
		return
	}
	k.mu.Lock()
	k.ips[ip] = true
	k.mu.Unlock()
}

// allocateIP hands out unique pod IPs from 10.244.0.0/16 (never loopback: Endpoints validation rejects it).
func (k *fakeKubelet) allocateIP() (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	const size = 256 * 254
	for i := 0; i < size; i++ {
		n := k.nextIP
		k.nextIP = (k.nextIP + 1) % size
		ip := fmt.Sprintf("10.244.%d.%d", n/254, n%254+1)
		if !k.ips[ip] {
			k.ips[ip] = true
			return ip, nil
		}
	}
	return "", fmt.Errorf("pod IP range exhausted")
}

func (k *fakeKubelet) releaseIP(ip string) {
	k.mu.Lock()
	delete(k.ips, ip)
	k.mu.Unlock()
}

func (k *fakeKubelet) worker(ctx context.Context) {
	for {
		key, quit := k.queue.Get()
		if quit {
			return
		}
		after, err := k.sync(ctx, key)
		switch {
		case err != nil:
			if !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
				klog.V(2).InfoS("fake kubelet: retrying", "pod", key, "err", err)
			}
			k.queue.AddRateLimited(key)
		case after > 0:
			k.queue.Forget(key)
			k.queue.AddAfter(key, after)
		default:
			k.queue.Forget(key)
		}
		k.queue.Done(key)
	}
}

// sync moves one pod a step along bind -> Running -> Ready (or crash loop); it returns when to look again.
func (k *fakeKubelet) sync(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	pod, err := k.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	switch {
	case pod.DeletionTimestamp != nil:
		return 0, k.terminate(ctx, pod)
	case pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed:
		return 0, nil
	case pod.Spec.NodeName == "":
		return 0, k.bind(ctx, pod)
	case pod.Status.PodIP == "":
		return k.run(ctx, pod)
	}
	return k.tick(ctx, pod)
}

func (k *fakeKubelet) terminate(ctx context.Context, pod *v1.Pod) error {
	if len(pod.Finalizers) > 0 {
		return nil // whoever owns the finalizers removes them; the apiserver then drops the pod
	}
	zero := int64(0)
	err := k.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero,
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

func (k *fakeKubelet) bind(ctx context.Context, pod *v1.Pod) error {
	binding := &v1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
		Target:     v1.ObjectReference{Kind: "Node", Name: nodeName},
	}
	err := k.client.CoreV1().Pods(pod.Namespace).Bind(ctx, binding, metav1.CreateOptions{})
	if apierrors.IsConflict(err) { // already bound: the informer brings the new state
		return nil
	}
	if err != nil {
		return err
	}
	k.scheduler.Eventf(pod, v1.EventTypeNormal, "Scheduled", "Successfully assigned %s/%s to %s", pod.Namespace, pod.Name, nodeName)
	return nil
}

func (k *fakeKubelet) podReadyDelay(pod *v1.Pod) time.Duration {
	if v, ok := pod.Annotations[readyDelayAnnotation]; ok {
		if secs, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && !math.IsNaN(secs) {
			return time.Duration(math.Max(0, secs) * float64(time.Second))
		}
		klog.InfoS("fake kubelet: bad annotation", "pod", klog.KObj(pod), readyDelayAnnotation, v)
	}
	return k.readyDelay
}

// run starts the containers: Running with a pod IP, not yet Ready.
func (k *fakeKubelet) run(ctx context.Context, pod *v1.Pod) (time.Duration, error) {
	ip, err := k.allocateIP()
	if err != nil {
		return 0, err
	}
	if err := k.writeStatus(ctx, pod, ip, false, 0, false); err != nil {
		k.releaseIP(ip)
		return 0, err
	}
	k.mu.Lock()
	k.started[pod.UID] = time.Now()
	k.mu.Unlock()
	return k.podReadyDelay(pod), nil
}

func truthy(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "1", "yes":
		return true
	}
	return false
}

func (k *fakeKubelet) tick(ctx context.Context, pod *v1.Pod) (time.Duration, error) {
	k.mu.Lock()
	started, ok := k.started[pod.UID]
	if !ok { // e.g. after a restart of realk8s: count the delay from now, as kubesim does
		started = time.Now()
		k.started[pod.UID] = started
	}
	k.mu.Unlock()
	restarts := int32(0)
	for _, cs := range pod.Status.ContainerStatuses {
		restarts = max(restarts, cs.RestartCount)
	}
	delay := k.podReadyDelay(pod)
	if truthy(pod.Annotations[crashLoopAnnotation]) {
		base := max(100*time.Millisecond, delay)
		now := time.Now()
		k.mu.Lock()
		due, ok := k.nextCrash[pod.UID]
		if !ok {
			due = started.Add(base)
			k.nextCrash[pod.UID] = due
		}
		k.mu.Unlock()
		if now.Before(due) {
			return due.Sub(now), nil
		}
		restarts++
		next := now.Add(base * time.Duration(1<<min(int(restarts), crashBackoffCap)))
		if err := k.writeStatus(ctx, pod, pod.Status.PodIP, false, restarts, true); err != nil {
			return 0, err
		}
		k.mu.Lock()
		k.nextCrash[pod.UID] = next
		k.mu.Unlock()
		for _, c := range pod.Spec.Containers {
			k.kubelet.Eventf(pod, v1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s in pod %s_%s(%s)",
				c.Name, pod.Name, pod.Namespace, pod.UID)
		}
		return next.Sub(now), nil
	}
	if truthy(pod.Annotations[neverReadyAnnotation]) {
		return 0, nil
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == v1.PodReady && c.Status == v1.ConditionTrue {
			return 0, nil
		}
	}
	if remaining := time.Until(started.Add(delay)); remaining > 0 {
		return remaining, nil
	}
	return 0, k.writeStatus(ctx, pod, pod.Status.PodIP, true, restarts, false)
}

func containerID(pod *v1.Pod, name string, restarts int32) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s/%s/%d", pod.UID, name, restarts)))
	return "containerd://" + hex.EncodeToString(sum[:])
}

func (k *fakeKubelet) writeStatus(ctx context.Context, pod *v1.Pod, ip string, ready bool, restarts int32, crashed bool) error {
	now := metav1.Now()
	updated := pod.DeepCopy()
	old := map[string]v1.ContainerStatus{}
	for _, cs := range pod.Status.ContainerStatuses {
		old[cs.Name] = cs
	}
	var statuses []v1.ContainerStatus
	var names []string
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
		startedAt := now
		if prev, ok := old[c.Name]; ok && prev.State.Running != nil {
			startedAt = prev.State.Running.StartedAt
		}
		running := !crashed
		cs := v1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: "", ContainerID: containerID(pod, c.Name, restarts),
			Ready: ready, RestartCount: restarts, Started: &running,
		}
		if crashed {
			cs.State = v1.ContainerState{Waiting: &v1.ContainerStateWaiting{
				Reason:  "CrashLoopBackOff",
				Message: fmt.Sprintf("back-off restarting failed container=%s pod=%s", c.Name, pod.Name),
			}}
			cs.LastTerminationState = v1.ContainerState{Terminated: &v1.ContainerStateTerminated{
				ExitCode: 1, Reason: "Error", StartedAt: startedAt, FinishedAt: now,
				ContainerID: containerID(pod, c.Name, restarts-1),
			}}
		} else {
			cs.State = v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: startedAt}}
		}
		statuses = append(statuses, cs)
	}
	readyStatus, reason, message := v1.ConditionTrue, "", ""
	if !ready {
		readyStatus, reason = v1.ConditionFalse, "ContainersNotReady"
		message = fmt.Sprintf("containers with unready status: [%s]", strings.Join(names, " "))
	}
	conditions := []v1.PodCondition{
		{Type: v1.PodReadyToStartContainers, Status: v1.ConditionTrue},
		{Type: v1.PodInitialized, Status: v1.ConditionTrue},
		{Type: v1.PodReady, Status: readyStatus, Reason: reason, Message: message},
		{Type: v1.ContainersReady, Status: readyStatus, Reason: reason, Message: message},
		{Type: v1.PodScheduled, Status: v1.ConditionTrue},
	}
	for i := range conditions {
		conditions[i].LastTransitionTime = now
		for _, prev := range pod.Status.Conditions {
			if prev.Type == conditions[i].Type && prev.Status == conditions[i].Status {
				conditions[i].LastTransitionTime = prev.LastTransitionTime
			}
		}
	}
	startTime := pod.Status.StartTime
	if startTime == nil {
		startTime = &now
	}
	updated.Status = v1.PodStatus{
		Phase:             v1.PodRunning,
		Conditions:        conditions,
		HostIP:            hostIP,
		HostIPs:           []v1.HostIP{{IP: hostIP}},
		PodIP:             ip,
		PodIPs:            []v1.PodIP{{IP: ip}},
		StartTime:         startTime,
		ContainerStatuses: statuses,
		QOSClass:          pod.Status.QOSClass,
	}
	_, err := k.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{})
	return err
}
