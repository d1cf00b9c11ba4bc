// Package trytontest drives the real Tryton of the end-to-end tests
// (test/e2e/peers/tryton.sh) the way a person in Tryton would: posting an
// invoice, paying it with the pay wizard. The connector does neither, so
// the tests need their own small JSON-RPC client.
package trytontest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"
)

// Env is the real server's address and sign-in, from the environment that
// `test/e2e/peers/tryton.sh env` prints.
type Env struct {
	URL, Database, User, Password string
}

// FromEnv returns the environment, or skips the test when it is not set.
func FromEnv(t testing.TB) Env {
	t.Helper()
	e := Env{os.Getenv("TRYTON_URL"), os.Getenv("TRYTON_DATABASE"), os.Getenv("TRYTON_USER"), os.Getenv("TRYTON_PASSWORD")}
	if e.URL == "" || e.Database == "" || e.User == "" || e.Password == "" {
		t.Skip("TRYTON_URL/TRYTON_DATABASE/TRYTON_USER/TRYTON_PASSWORD not set: run test/e2e/peers/tryton.sh install start and eval its env, or make test-e2e")
	}
	return e
}

// Settings are a tryton system's settings for entity, and Secrets its password.
func (e Env) Settings(entity string) map[string]any {
	return map[string]any{"url": e.URL, "database": e.Database, "user": e.User, "entity": entity}
}

// Secrets are the system's secrets.
func (e Env) Secrets() map[string]string { return map[string]string{"password": e.Password} }

// Client is an administrator's JSON-RPC session.
type Client struct {
	env  Env
	auth string
	ctx  map[string]any
}

// WithEnv points a client without a session at e, for calls that need
// none (common.db.login).
func (c *Client) WithEnv(e Env) *Client {
	c.env = e
	return c
}

// Login signs in as the environment's user.
func Login(ctx context.Context, e Env) (*Client, error) {
	c := &Client{env: e}
	var res []any
	if err := c.Call(ctx, &res, "common.db.login", e.User, map[string]any{"password": e.Password}, "en"); err != nil {
		return nil, err
	}
	if len(res) != 2 {
		return nil, fmt.Errorf("login: %v", res)
	}
	uid, _ := res[0].(json.Number).Int64()
	c.auth = "Session " + base64.StdEncoding.EncodeToString([]byte(e.User+":"+strconv.FormatInt(uid, 10)+":"+res[1].(string)))
	var prefs map[string]any
	if err := c.Call(ctx, &prefs, "model.res.user.get_preferences", true, map[string]any{}); err != nil {
		return nil, err
	}
	c.ctx = map[string]any{"company": prefs["company"]}
	return c, nil
}

// Ctx is the user's context with extra keys.
func (c *Client) Ctx(kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range c.ctx {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

// Call sends one method; params are sent as they are (pass Ctx() last for
// model methods).
func (c *Client) Call(ctx context.Context, out any, method string, params ...any) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if params == nil {
		params = []any{}
	}
	body, _ := json.Marshal(map[string]any{"id": 1, "method": method, "params": params})
	req, err := http.NewRequestWithContext(ctx, "POST", c.env.URL+"/"+c.env.Database+"/", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: HTTP %d", method, resp.StatusCode)
	}
	var env struct {
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	dec := json.NewDecoder(resp.Body)
	if err := dec.Decode(&env); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	if len(env.Error) > 0 && string(env.Error) != "null" {
		return fmt.Errorf("%s: %s", method, env.Error)
	}
	if out == nil {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(env.Result))
	d.UseNumber()
	return d.Decode(out)
}

func dec(s string) map[string]any { return map[string]any{"__class__": "Decimal", "decimal": s} }

// Post posts draft invoices (the invoice gets its number and its lines to pay).
func (c *Client) Post(ctx context.Context, ids ...int64) error {
	return c.Call(ctx, nil, "model.account.invoice.post", ids, c.Ctx())
}

// Pay pays amount on invoice id with the first payment method, through the
// pay wizard as the Pay button does; a full payment makes it paid.
func (c *Client) Pay(ctx context.Context, id int64, amount string) error {
	var methods []int64
	if err := c.Call(ctx, &methods, "model.account.invoice.payment.method.search", []any{}, 0, 1, nil, c.Ctx()); err != nil || len(methods) == 0 {
		return fmt.Errorf("payment method: %v %w", methods, err)
	}
	var w []any
	if err := c.Call(ctx, &w, "wizard.account.invoice.pay.create", c.Ctx()); err != nil {
		return err
	}
	sid := w[0]
	wctx := c.Ctx("active_id", id, "active_ids", []int64{id}, "active_model", "account.invoice")
	defer func() { _ = c.Call(context.Background(), nil, "wizard.account.invoice.pay.delete", sid, c.Ctx()) }()
	if err := c.Call(ctx, nil, "wizard.account.invoice.pay.execute", sid, map[string]any{}, "start", wctx); err != nil {
		return err
	}
	now := time.Now().UTC()
	data := map[string]any{"start": map[string]any{"amount": dec(amount), "currency": 1, "currency_digits": 2, "description": "payment",
		"payment_method": methods[0], "date": map[string]any{"__class__": "date", "year": now.Year(), "month": int(now.Month()), "day": now.Day()}}}
	var res map[string]any
	if err := c.Call(ctx, &res, "wizard.account.invoice.pay.execute", sid, data, "choice", wctx); err != nil {
		return err
	}
	if _, asks := res["view"]; asks { // a partial payment: keep the rest open
		data["ask"] = map[string]any{"type": "partial", "lines": []any{}, "payment_lines": []any{}, "currency_digits": 2}
		return c.Call(ctx, nil, "wizard.account.invoice.pay.execute", sid, data, "pay", wctx)
	}
	return nil
}
