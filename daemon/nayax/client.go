package nayax

import (
	"bytes"
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/sitelink/sitelink/daemon/retry"
)

// Client defaults.
const (
	DefaultTimeout       = 10 * time.Second
	DefaultAttempts      = 3
	DefaultBackoffMin    = 200 * time.Millisecond
	DefaultBackoffMax    = 5 * time.Second
	DefaultAuthTTL       = 30 * time.Minute
	DefaultAuthCacheSize = 10000

	// maxResponse bounds what the Client reads of an answer; Spark's are
	// a few hundred bytes.
	maxResponse = 1 << 20
)

// ClientConfig configures a Client. BaseURL, IntegratorID, SignKey,
// TokenID and TokenSecret are required; the rest have defaults.
type ClientConfig struct {
	// BaseURL is Spark's base, e.g. https://nayax-spark-dmz.nayax.com/api;
	// a call goes to POST BaseURL+"/"+call.
	BaseURL string
	// IntegratorID (Nayax's SignKeyId) goes in the IntegratorId header.
	IntegratorID string
	// SignKey keys the TransactionSignature header (see Signature).
	SignKey string
	// TokenID is the TokenId of StartAuthentication.
	TokenID int32
	// TokenSecret is the 32-byte Cipher key: the 32 rightmost characters
	// of the Secret Token (see CipherKey).
	TokenSecret []byte
	// Timeout bounds each HTTP attempt (default 10 s).
	Timeout time.Duration
	// Attempts is how many times one request is sent on a transport
	// error, a timeout or an HTTP 5xx, 408 or 429 (default 3).
	Attempts int
	// BackoffMin and BackoffMax bound the wait between attempts, which
	// doubles from BackoffMin up to BackoffMax, each wait drawn at random
	// between half and all of it: retry.Backoff, sitelink's one backoff
	// rule (defaults 200 ms and 5 s; a BackoffMax below BackoffMin is
	// raised to it).
	BackoffMin, BackoffMax time.Duration
	// AuthTTL is how long a successful StartAuthentication is reused for
	// further calls on the same SparkTransactionId (default 30 min), and
	// AuthCacheSize how many ids are remembered (default 10000; the oldest
	// is forgotten first). A forgotten id is simply authenticated again.
	AuthTTL       time.Duration
	AuthCacheSize int
	// HTTP is the client to send with; nil means one with Timeout that
	// does not follow redirects (the signature headers must not be sent
	// elsewhere).
	HTTP *http.Client
	// Logger gets one line per failed attempt and per answer, never a
	// body; nil discards.
	Logger *slog.Logger
	// Now is the clock of the cipher timestamp and the auth cache; nil
	// means time.Now.
	Now func() time.Time
}

// Client makes sitelink's calls to Nayax Spark: it authenticates each
// SparkTransactionId with StartAuthentication, signs every request, and
// retries what the network lost. It is safe for concurrent use.
type Client struct {
	cfg  ClientConfig
	base string
	http *http.Client
	log  *slog.Logger
	auth *authCache
	wait retry.Backoff // between attempts
}

// Response is Nayax's answer to one call. Body is the answer exactly as
// received; Status is its Status object, decoded. HTTPStatus is the last
// HTTP status seen (0 if none came), and Attempts the number of times
// the call itself was sent (StartAuthentication not counted).
type Response struct {
	Body       json.RawMessage
	Status     Status
	HTTPStatus int
	Attempts   int
}

// NewClient checks c, fills in the defaults and returns a Client.
func NewClient(c ClientConfig) (*Client, error) {
	u, err := url.Parse(c.BaseURL)
	switch {
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		return nil, errors.New("nayax client: BaseURL must be an absolute http(s) URL")
	case c.IntegratorID == "":
		return nil, errors.New("nayax client: IntegratorID is required")
	case c.SignKey == "":
		return nil, errors.New("nayax client: SignKey is required")
	case c.TokenID <= 0:
		return nil, errors.New("nayax client: TokenID must be positive")
	}
	if err := checkKey(c.TokenSecret); err != nil {
		return nil, fmt.Errorf("nayax client: TokenSecret: %w", err)
	}
	c.TokenSecret = bytes.Clone(c.TokenSecret)
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Attempts <= 0 {
		c.Attempts = DefaultAttempts
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = DefaultBackoffMin
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = DefaultBackoffMax
	}
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = c.BackoffMin
	}
	if c.AuthTTL <= 0 {
		c.AuthTTL = DefaultAuthTTL
	}
	if c.AuthCacheSize <= 0 {
		c.AuthCacheSize = DefaultAuthCacheSize
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{
			Timeout: c.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{
		cfg:  c,
		base: strings.TrimRight(c.BaseURL, "/"),
		http: hc,
		log:  log,
		auth: newAuthCache(c.AuthCacheSize, c.AuthTTL),
		wait: retry.Backoff{Min: c.BackoffMin, Max: c.BackoffMax},
	}, nil
}

// Do sends body, the exact JSON object the edge built, as call (one of
// the Call constants other than CallStartAuthentication). body must hold
// SparkTransactionId (36 characters), TerminalId and TerminalIdType (1
// or 2), which also feed StartAuthentication; otherwise Do returns
// ErrBadRequest and sends nothing.
//
// Unless the id was authenticated within AuthTTL, Do first calls
// StartAuthentication and checks that it is Approved with
// HashedSparkTransactionId = HashSparkID(id). If the call is refused with
// code 33 (failed to authenticate), Do authenticates once more and sends
// the call again.
//
// Any 2xx answer whose JSON body has a Status with a Verdict is a
// Response with a nil error, Approved or Declined: Nayax decided. Errors
// wrap ErrBadRequest, ErrTransport, ErrBadResponse or ErrAuth (see their
// documentation for what each means for a retry); with ErrTransport the
// caller's context error is wrapped too when that was the cause. On an
// error, Response holds what was received, if anything: for ErrAuth, the
// StartAuthentication answer or the call's code-33 answer.
func (c *Client) Do(ctx context.Context, call string, body json.RawMessage) (Response, error) {
	switch call {
	case CallTriggerTransaction, CallSettlement, CallCancelTransaction, CallExternalSettlement, CallExternalCancel:
	default:
		return Response{}, fmt.Errorf("nayax %q: %w: unknown call", call, ErrBadRequest)
	}
	var spark, terminal Text
	var typ Int64
	if err := decodeObject(body, []field{
		{"SparkTransactionId", &spark},
		{"TerminalId", &terminal},
		{"TerminalIdType", &typ},
	}); err != nil {
		return Response{}, fmt.Errorf("nayax %s: %w: %w", call, ErrBadRequest, err)
	}
	var bad *DecodeError
	switch {
	case !present(spark):
		bad = missing("SparkTransactionId")
	case checkSparkID(spark.S) != nil:
		bad = invalid("SparkTransactionId", "must be 36 printable ASCII characters (a GUID)")
	default:
		bad = checkTerminal(terminal, typ)
	}
	if bad != nil {
		return Response{}, fmt.Errorf("nayax %s: %w: %w", call, ErrBadRequest, bad)
	}
	id := spark.S

	if !c.auth.fresh(id, c.cfg.Now()) {
		if ar, err := c.authenticate(ctx, id, terminal.S, typ.V); err != nil {
			ar.Attempts = 0 // the call itself was never sent
			return ar, fmt.Errorf("nayax %s: %w", call, err)
		}
	}
	resp, err := c.post(ctx, call, id, body)
	if err != nil {
		return resp, fmt.Errorf("nayax %s: %w", call, err)
	}
	if resp.Status.IsApproved() || resp.Status.Code() != CodeAuthFailed {
		return resp, nil
	}

	// Nayax no longer knows the authentication (it expired, or another
	// replica's cache was stale): authenticate again, once.
	c.log.LogAttrs(ctx, slog.LevelInfo, "nayax: call refused with code 33, authenticating again",
		slog.String("call", call), slog.String("spark_transaction_id", id))
	c.auth.drop(id)
	if ar, err := c.authenticate(ctx, id, terminal.S, typ.V); err != nil {
		ar.Attempts = resp.Attempts
		return ar, fmt.Errorf("nayax %s: %w", call, err)
	}
	again, err := c.post(ctx, call, id, body)
	again.Attempts += resp.Attempts
	if err != nil {
		return again, fmt.Errorf("nayax %s: %w", call, err)
	}
	if !again.Status.IsApproved() && again.Status.Code() == CodeAuthFailed {
		c.auth.drop(id)
		return again, fmt.Errorf("nayax %s: %w: refused with code 33 right after StartAuthentication", call, ErrAuth)
	}
	return again, nil
}

// authenticate runs StartAuthentication for id and remembers success.
func (c *Client) authenticate(ctx context.Context, id, terminal string, typ int64) (Response, error) {
	random := NewRandom()
	cipher, err := Cipher(id, random, c.cfg.Now(), c.cfg.TokenSecret)
	if err != nil {
		return Response{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	body, err := json.Marshal(StartAuthenticationRequest{
		TokenId:            NewInt64(int64(c.cfg.TokenID)),
		TerminalId:         NewText(terminal),
		TerminalIdType:     NewInt64(typ),
		Random:             NewText(random),
		Cipher:             NewText(cipher),
		SparkTransactionId: NewText(id),
	})
	if err != nil {
		return Response{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	resp, err := c.post(ctx, CallStartAuthentication, id, body)
	if err != nil {
		return resp, fmt.Errorf("%s: %w", CallStartAuthentication, err)
	}
	if !resp.Status.IsApproved() {
		return resp, fmt.Errorf("%s: %w: declined with code %d (%s)", CallStartAuthentication, ErrAuth,
			resp.Status.Code(), strings.TrimSpace(resp.Status.ErrorDescription))
	}
	var ar StartAuthenticationResponse
	if err := ar.UnmarshalJSON(resp.Body); err != nil {
		return resp, fmt.Errorf("%s: %w: %w", CallStartAuthentication, ErrBadResponse, err)
	}
	// Nayax proves it is Nayax by hashing our id; a proxy or an impostor
	// cannot answer for an id it never saw.
	if !strings.EqualFold(strings.TrimSpace(ar.HashedSparkTransactionId.S), HashSparkID(id)) {
		return resp, fmt.Errorf("%s: %w: HashedSparkTransactionId does not match the id", CallStartAuthentication, ErrAuth)
	}
	c.auth.put(id, c.cfg.Now())
	return resp, nil
}

// post sends body to call with the signature headers, retrying transient
// failures with backoff.
func (c *Client) post(ctx context.Context, call, id string, body []byte) (Response, error) {
	target := c.base + "/" + call
	sig := Signature(id, c.cfg.SignKey)
	var resp Response
	var last error
	for attempt := 1; attempt <= c.cfg.Attempts; attempt++ {
		if attempt > 1 {
			if err := sleep(ctx, c.wait.Delay(attempt-1)); err != nil {
				return resp, fmt.Errorf("%w: %w", ErrTransport, err)
			}
		}
		resp.Attempts = attempt
		status, data, err := c.once(ctx, target, sig, body)
		resp.HTTPStatus = status
		if err != nil {
			if ctx.Err() != nil {
				return resp, fmt.Errorf("%w: %w", ErrTransport, ctx.Err())
			}
			if errors.Is(err, errTooLarge) {
				return resp, fmt.Errorf("%w: %w", ErrBadResponse, err)
			}
			last = err
			c.retryLog(ctx, call, id, attempt, status, err)
			continue
		}
		resp.Body = data
		switch {
		case status >= 500 || status == http.StatusRequestTimeout || status == http.StatusTooManyRequests:
			last = fmt.Errorf("HTTP %d", status)
			c.retryLog(ctx, call, id, attempt, status, last)
			continue
		case status == http.StatusUnauthorized || status == http.StatusForbidden:
			return resp, fmt.Errorf("%w: HTTP %d", ErrAuth, status)
		case status < 200 || status > 299:
			return resp, fmt.Errorf("%w: HTTP %d", ErrBadResponse, status)
		}
		st, err := answerStatus(data)
		if err != nil {
			return resp, fmt.Errorf("%w: %w", ErrBadResponse, err)
		}
		resp.Status = st
		c.log.LogAttrs(ctx, slog.LevelDebug, "nayax: answer",
			slog.String("call", call), slog.String("spark_transaction_id", id),
			slog.Int("attempt", attempt), slog.Int("http_status", status),
			slog.String("verdict", st.Verdict), slog.Int("code", st.Code()))
		return resp, nil
	}
	return resp, fmt.Errorf("%w after %d attempts: %w", ErrTransport, resp.Attempts, last)
}

var errTooLarge = errors.New("answer too large")

// once makes one HTTP attempt and reads the whole answer.
func (c *Client) once(ctx context.Context, target, sig string, body []byte) (int, []byte, error) {
	actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	// Set directly, not through Header.Set, so that the names go out
	// spelt as Nayax documents them (HTTP/1.1 keeps the case).
	req.Header["Content-Type"] = []string{"application/json"}
	req.Header["Accept"] = []string{"application/json"}
	req.Header["IntegratorId"] = []string{c.cfg.IntegratorID}
	req.Header["TransactionSignature"] = []string{sig}
	res, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxResponse+1))
	if err != nil {
		return res.StatusCode, nil, err
	}
	if len(data) > maxResponse {
		return res.StatusCode, nil, errTooLarge
	}
	return res.StatusCode, data, nil
}

func (c *Client) retryLog(ctx context.Context, call, id string, attempt, status int, err error) {
	c.log.LogAttrs(ctx, slog.LevelWarn, "nayax: attempt failed",
		slog.String("call", call), slog.String("spark_transaction_id", id),
		slog.Int("attempt", attempt), slog.Int("of", c.cfg.Attempts),
		slog.Int("http_status", status), slog.String("error", err.Error()))
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// answerStatus finds the Status of an answer. An answer without one, or
// with a Status without a Verdict, is not understood: reading it as a
// decline could record money as refused when it was not.
func answerStatus(data []byte) (Status, error) {
	var st *Status
	if err := decodeObjectLimit(data, []field{{"Status", optStatus{&st}}}, maxResponse); err != nil {
		return Status{}, err
	}
	if st == nil {
		return Status{}, errors.New("no Status")
	}
	if strings.TrimSpace(st.Verdict) == "" {
		return Status{}, errors.New("no Verdict in Status")
	}
	return *st, nil
}

// authCache remembers which SparkTransactionIds were authenticated when,
// bounded in size and age.
type authCache struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	byID  map[string]*list.Element
	order *list.List // of authEntry, oldest first
}

type authEntry struct {
	id string
	at time.Time
}

func newAuthCache(max int, ttl time.Duration) *authCache {
	return &authCache{max: max, ttl: ttl, byID: make(map[string]*list.Element), order: list.New()}
}

func (a *authCache) fresh(id string, now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.byID[id]
	if !ok {
		return false
	}
	at := e.Value.(authEntry).at
	if now.Sub(at) >= a.ttl || now.Before(at) {
		a.order.Remove(e)
		delete(a.byID, id)
		return false
	}
	return true
}

func (a *authCache) put(id string, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if e, ok := a.byID[id]; ok {
		a.order.Remove(e)
	}
	a.byID[id] = a.order.PushBack(authEntry{id: id, at: now})
	for a.order.Len() > a.max {
		oldest := a.order.Front()
		a.order.Remove(oldest)
		delete(a.byID, oldest.Value.(authEntry).id)
	}
}

func (a *authCache) drop(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if e, ok := a.byID[id]; ok {
		a.order.Remove(e)
		delete(a.byID, id)
	}
}

func (a *authCache) len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.order.Len()
}
