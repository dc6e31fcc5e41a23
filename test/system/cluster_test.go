package system

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

var (
	clusterDuration = flag.Duration("cluster.duration", 12*time.Second, "how long TestClusterFailover sends webhooks")
	clusterRate     = flag.Int("cluster.rate", 200, "webhooks per second TestClusterFailover sends")
	clusterReport   = flag.String("cluster.report", "", "write TestClusterFailover's figures as JSON to this file")
	clusterGuard    = flag.Duration("cluster.guard", 500*time.Millisecond, "log.dedup_guard of TestClusterFailover's replicas (short, so the final retries test the dedup index)")
)

// natsNode is one nats-server process of a test cluster.
type natsNode struct {
	cmd        *exec.Cmd
	clientPort int
}

// startCluster runs a 3-node JetStream cluster on loopback.
func startCluster(t *testing.T) []*natsNode {
	t.Helper()
	bin := natsServerBinary(t)
	nodes := make([]*natsNode, 3)
	routePorts := []int{freePort(t), freePort(t), freePort(t)}
	var routes []string
	for _, p := range routePorts {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	for i := range nodes {
		nodes[i] = &natsNode{clientPort: freePort(t)}
		cmd := exec.Command(bin, "-js", "-a", "127.0.0.1", "-p", fmt.Sprint(nodes[i].clientPort),
			"-sd", t.TempDir(), "--server_name", fmt.Sprintf("n%d", i+1), "--cluster_name", "hookstream-test",
			"--cluster", routes[i], "--routes", strings.Join(routes, ","))
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		nodes[i].cmd = cmd
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	}
	return nodes
}

// TestClusterFailover runs two hookstream replicas on a 3-node NATS cluster
// with 3-way replicated streams, and kills one NATS node and one replica
// during load. No acknowledged event may be lost, and a subscriber that
// fails over between replicas sees every event exactly once, including
// events ingested by the other replica. An outbound endpoint delivered by
// the killed replica is taken over by the survivor and receives every
// acknowledged event at least once.
func TestClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a NATS cluster and two replicas")
	}
	nodes := startCluster(t)
	var urls []string
	for _, n := range nodes {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", n.clientPort))
	}
	// A short JetStream dedup window: the retries at the end can only be
	// recognised by each replica's dedup index.
	logCfg := fmt.Sprintf("  url: %q\n  replicas: 3\n  dedup_guard: %s\n", strings.Join(urls, ","), *clusterGuard) + crashDeliveryYAML
	replicas := []*proc{newProc(t, t.TempDir(), logCfg), newProc(t, t.TempDir(), logCfg)}
	for _, r := range replicas {
		r.start()
	}
	// An outbound endpoint, delivered by one replica at a time (its
	// lease). Replica 0 is the one killed below: make it the one that
	// delivers, so the survivor must take the endpoint over.
	rc := newCountingReceiver(t, 0)
	ep := createEndpointAt(t, replicas[0].grpcAddr, &hookstreamv1.Endpoint{Url: rc.srv.URL + "/hook"})
	holder := -1
	for deadline := time.Now().Add(15 * time.Second); holder < 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for i, r := range replicas {
			if r.deliversEndpoint(t, ep.GetId()) {
				holder = i
			}
		}
	}
	if holder < 0 {
		t.Fatalf("no replica started delivering endpoint %s within 15s", ep.GetId())
	}
	if holder == 1 {
		replicas[0], replicas[1] = replicas[1], replicas[0]
	}

	res := &loadResult{ackedIDs: map[string]bool{}}
	sub := &resumingSubscriber{seen: map[string]int{}}
	subCtx, stopSub := context.WithCancel(context.Background())
	defer stopSub()
	// The subscriber starts on replica 0, which is killed; it fails over.
	go sub.run(subCtx, []string{replicas[0].grpcAddr, replicas[1].grpcAddr})

	loadCtx, stopLoad := context.WithTimeout(context.Background(), *clusterDuration)
	defer stopLoad()
	loadDone := make(chan struct{})
	go func() {
		sendLoad(loadCtx, []string{"http://" + replicas[0].httpAddr, "http://" + replicas[1].httpAddr}, *clusterRate, res)
		close(loadDone)
	}()
	time.Sleep(*clusterDuration / 3)
	_ = nodes[0].cmd.Process.Signal(syscall.SIGKILL)
	_ = nodes[0].cmd.Wait()
	t.Log("killed NATS node n1")
	time.Sleep(*clusterDuration / 3)
	replicas[0].kill()
	t.Log("killed hookstream replica 0")
	<-loadDone
	// Vendors retry what got no answer, and may redeliver what was
	// acknowledged (on either replica): all of it reaches the survivor.
	retried := retryLoad(t, "http://"+replicas[1].httpAddr, res)

	missing := sub.waitFor(res.ackedIDs, 30*time.Second)
	stopSub()

	v := verify(t, replicas[1].grpcAddr, res, sub)
	lost, dups, delivered, reconnects := v.lost, v.dups, v.delivered, v.reconnects

	// Outbound delivery: the survivor takes the endpoint over once the
	// killed replica's lease expires, and every acknowledged event
	// (ingested by either replica) reaches the receiver at least once.
	// Two replicas delivering at once would show as one id received
	// concurrently; repeats after the takeover are allowed.
	dc := rc.waitAll(res.ackedIDs, 60*time.Second)
	survivorDelivers := replicas[1].deliversEndpoint(t, ep.GetId())
	t.Logf("cluster failover, delivery to endpoint %s: %d acked events, %d missing, %d duplicates (repeats of an id), "+
		"%d delivered but not acked, %d requests, %d received while the same id was in flight, at most %d at once, waited %.1fs; survivor delivers: %v",
		ep.GetId(), dc.Acked, dc.Missing, dc.Duplicates, dc.Extra, dc.Requests, dc.Overlaps, dc.MaxConc, dc.WaitS, survivorDelivers)
	t.Logf("killed replica's delivery log:\n%s\nsurvivor's:\n%s", deliveryLogLines(replicas[0].stderr.String()), deliveryLogLines(replicas[1].stderr.String()))
	if dc.Missing != 0 {
		t.Errorf("outbound delivery skipped %d of %d acknowledged events (e.g. %v)", dc.Missing, dc.Acked, dc.missingID)
	}
	if dc.Overlaps != 0 {
		t.Errorf("%d deliveries arrived while the same event was being delivered: two replicas delivered the endpoint at once", dc.Overlaps)
	}
	report := map[string]any{
		"duration_s": clusterDuration.Seconds(), "rate_per_s": *clusterRate, "nats_nodes_killed": 1, "replicas_killed": 1,
		"sent": res.sent.Load(), "acked": res.acked.Load(), "no_answer": res.refused.Load(), "non_2xx": res.failed.Load(), "generator_skipped": res.skipped.Load(),
		"dedup_guard": clusterGuard.String(),
		"lost":        lost, "missing_from_subscriber": missing, "duplicates_delivered": dups, "distinct_delivered": delivered,
		"subscriber_reconnects": reconnects, "retried_unanswered": retried.unanswered,
		"retried_unanswered_already_stored": retried.unansweredDup, "redelivered_acked": retried.acked, "stored_twice": v.storedTwice,
		"delivery": dc,
	}
	b, _ := json.Marshal(report)
	t.Logf("cluster failover: %s", b)
	if *clusterReport != "" {
		_ = os.WriteFile(*clusterReport, b, 0o644)
	}
	if lost != 0 || missing != 0 || dups != 0 || v.storedTwice != 0 || res.acked.Load() == 0 {
		t.Errorf("acked %d: lost %d, stored %d twice; subscriber missed %d and saw %d duplicates", res.acked.Load(), lost, v.storedTwice, missing, dups)
	}
}
