package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// relayLoadResult is one or more measured windows of load.
type relayLoadResult struct {
	requests int
	window   time.Duration
	lat      []time.Duration
	// all counts every request answered, warm-up included; cpu is the
	// CPU time the measured processes used meanwhile, broker the
	// broker's (0: not known).
	all    int
	cpu    time.Duration
	broker time.Duration
}

func (r *relayLoadResult) merge(o relayLoadResult) {
	r.requests += o.requests
	r.window += o.window
	r.lat = append(r.lat, o.lat...)
	r.all += o.all
	r.cpu += o.cpu
	r.broker += o.broker
}

// cpuPerRequest is the CPU time the measured processes spent on each
// request, 0 if not known.
func (r relayLoadResult) cpuPerRequest() time.Duration {
	if r.all == 0 {
		return 0
	}
	return r.cpu / time.Duration(r.all)
}

// brokerPerRequest is the CPU time the broker spent on each request, 0 if
// not known.
func (r relayLoadResult) brokerPerRequest() time.Duration {
	if r.all == 0 {
		return 0
	}
	return r.broker / time.Duration(r.all)
}

func (r relayLoadResult) rate() float64 {
	if r.window <= 0 {
		return 0
	}
	return float64(r.requests) / r.window.Seconds()
}

func (r relayLoadResult) quantile(q float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	s := slices.Clone(r.lat)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func (r relayLoadResult) String() string {
	return fmt.Sprintf("%s/s, p50 %s, p99 %s", relayThousands(r.rate()), relayLatency(r.quantile(0.5)), relayLatency(r.quantile(0.99)))
}

func relayLatency(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

// relayThousands writes 12345.6 as 12,346.
func relayThousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// relayLoad posts StopCallbacks from conc keep-alive clients, client i to
// urls[i%len(urls)] (a load balancer's round robin), each for a terminal
// drawn at random among the n registered, for warm and then dur; only
// the requests of the dur window count. Every answer must be the site's
// Approved: anything else (an unknown machine, a timeout, a 401) fails
// the measurement rather than count as throughput.
//
// pids are the processes serving the requests and broker the broker's
// (0: none): their CPU time over the whole call is taken too, where the
// system tells it.
func relayLoad(ctx context.Context, urls []string, pids []int, broker int, header [2]string, n, conc int, warm, dur time.Duration) (relayLoadResult, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc, DisableCompression: true, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	start := time.Now()
	from, until := start.Add(warm), start.Add(warm+dur)
	cpu0, cpuOK := relayCPU(pids)
	brk0, brkOK := relayCPU([]int{broker})
	type worker struct {
		done int
		all  int
		lat  []time.Duration
		err  error
	}
	ws := make([]worker, conc)
	var wg sync.WaitGroup
	for i := range conc {
		wg.Add(1)
		go func(w *worker, url string, seed uint64) {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(seed, 15))
			var body []byte
			for k := uint64(0); ; k++ {
				t0 := time.Now()
				if !t0.Before(until) || ctx.Err() != nil {
					return
				}
				term := rnd.IntN(n)
				body = relayStopBody(body[:0], term, seed<<32|k)
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/api/StopCallback", bytes.NewReader(body))
				if err != nil {
					w.err = err
					return
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set(header[0], header[1])
				resp, err := client.Do(req)
				if err != nil {
					w.err = err
					return
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				t1 := time.Now()
				if err != nil {
					w.err = err
					return
				}
				if resp.StatusCode != http.StatusOK || !bytes.Contains(got, []byte(`"Verdict":"Approved"`)) {
					w.err = fmt.Errorf("terminal %d: HTTP %d %s", term, resp.StatusCode, bytes.TrimSpace(got))
					return
				}
				w.all++
				if !t0.Before(from) && !t1.After(until) {
					w.done++
					w.lat = append(w.lat, t1.Sub(t0))
				}
			}
		}(&ws[i], urls[i%len(urls)], uint64(i+1))
	}
	wg.Wait()
	cpu1, cpuOK1 := relayCPU(pids)
	brk1, brkOK1 := relayCPU([]int{broker})
	if err := ctx.Err(); err != nil {
		return relayLoadResult{}, err
	}
	res := relayLoadResult{window: dur}
	if cpuOK && cpuOK1 {
		res.cpu = cpu1 - cpu0
	}
	if broker != 0 && brkOK && brkOK1 {
		res.broker = brk1 - brk0
	}
	for _, w := range ws {
		if w.err != nil {
			return relayLoadResult{}, w.err
		}
		res.requests += w.done
		res.all += w.all
		res.lat = append(res.lat, w.lat...)
	}
	return res, nil
}

// relayCPU sums the CPU time (user and system) the processes have used.
func relayCPU(pids []int) (time.Duration, bool) {
	var sum time.Duration
	for _, pid := range pids {
		d, ok := relayProcessCPU(pid)
		if !ok {
			return 0, false
		}
		sum += d
	}
	return sum, len(pids) > 0
}

// relayStopBody appends a StopCallback for terminal i of the fleet
// (relayFleet) with a transaction id made of seq, in the seed's shape.
func relayStopBody(b []byte, i int, seq uint64) []byte {
	return fmt.Appendf(b, `{"StopSiteId":4,"MachineId":%d,"HwSerial":"%s","CardLast4Digits":"1234",`+
		`"CardHash":"7f2082ba5dbccf706b6987e75b62083f65b5695bc2d8c827c3e46769d007a9e6",`+
		`"SparkTransactionId":"%08x-%04x-4000-8000-%012x","NayaxTransactionId":%d,"CardUid":"1288528281124927",`+
		`"MachineAuTime":"20240205194122328","ServiceStationNumber":"5"}`,
		relayMachine(i), relaySerial(i), uint32(seq>>32), uint16(seq>>16), seq&0xffffffffffff, 2004545072+int64(seq&0xffffff))
}
