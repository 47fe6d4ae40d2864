package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Product and Order are what the shop keeps in db, as JSON values under
// "product-…" and "order-…" keys.
type Product struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	PriceCents int    `json:"price_cents"`
}

type Order struct {
	ID       string    `json:"id"`
	Product  string    `json:"product"`
	Quantity int       `json:"quantity"`
	Created  time.Time `json:"created"`
}

// dbClient talks to `shopd db` over HTTP.
type dbClient struct{ base string }

func (c dbClient) do(ctx context.Context, method, path string, body []byte) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return b, resp.StatusCode, err
}

func (c dbClient) keys(ctx context.Context, prefix string) ([]string, error) {
	b, code, err := c.do(ctx, http.MethodGet, "/kv/?prefix="+url.QueryEscape(prefix), nil)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("db list: %d %s", code, bytes.TrimSpace(b))
	}
	var keys []string
	return keys, json.Unmarshal(b, &keys)
}

// get decodes the value of key into v; it returns errNotFound for a 404.
func (c dbClient) get(ctx context.Context, key string, v any) error {
	b, code, err := c.do(ctx, http.MethodGet, "/kv/"+url.PathEscape(key), nil)
	switch {
	case err != nil:
		return err
	case code == http.StatusNotFound:
		return errNotFound
	case code != http.StatusOK:
		return fmt.Errorf("db get %s: %d %s", key, code, bytes.TrimSpace(b))
	}
	return json.Unmarshal(b, v)
}

func (c dbClient) put(ctx context.Context, key string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b, code, err := c.do(ctx, http.MethodPut, "/kv/"+url.PathEscape(key), body)
	if err != nil {
		return err
	}
	if code != http.StatusNoContent {
		return fmt.Errorf("db put %s: %d %s", key, code, bytes.TrimSpace(b))
	}
	return nil
}

func listJSON[T any](ctx context.Context, db dbClient, prefix string) ([]T, error) {
	keys, err := db.keys(ctx, prefix)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(keys))
	for _, k := range keys {
		var v T
		if err := db.get(ctx, k, &v); errors.Is(err, errNotFound) {
			continue // deleted between list and get
		} else if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// appHandler serves the shop API:
//
//	GET  /healthz       200 when db answers its own health check
//	GET  /api/products  JSON array of products
//	GET  /api/orders    JSON array of orders
//	POST /api/orders    {"product": "product-001", "quantity": 1} → 201 and the order
func appHandler(db dbClient) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		b, code, err := db.do(r.Context(), http.MethodGet, "/healthz", nil)
		if err != nil || code != http.StatusOK {
			http.Error(w, fmt.Sprintf("db unhealthy: %v %d %s", err, code, bytes.TrimSpace(b)), http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /api/products", func(w http.ResponseWriter, r *http.Request) {
		ps, err := listJSON[Product](r.Context(), db, "product-")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		writeJSON(w, ps)
	})
	mux.HandleFunc("GET /api/orders", func(w http.ResponseWriter, r *http.Request) {
		orders, err := listJSON[Order](r.Context(), db, "order-")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		writeJSON(w, orders)
	})
	mux.HandleFunc("POST /api/orders", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Product  string `json:"product"`
			Quantity int    `json:"quantity"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
			http.Error(w, "bad order: "+err.Error(), http.StatusBadRequest)
			return
		}
		if req.Quantity <= 0 {
			req.Quantity = 1
		}
		var p Product
		if err := db.get(r.Context(), req.Product, &p); errors.Is(err, errNotFound) || !strings.HasPrefix(req.Product, "product-") {
			http.Error(w, fmt.Sprintf("no product %q", req.Product), http.StatusBadRequest)
			return
		} else if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		now := time.Now().UTC()
		// Nanosecond keys sort by creation time and do not collide in practice.
		o := Order{ID: "order-" + strconv.FormatInt(now.UnixNano(), 10), Product: p.ID, Quantity: req.Quantity, Created: now}
		if err := db.put(r.Context(), o.ID, o); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.Header().Set("Location", "/api/orders/"+o.ID)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(o)
	})
	return mux
}

func runApp(args []string) error {
	fl := flag.NewFlagSet("app", flag.ContinueOnError)
	listen := fl.String("listen", ":8080", "address to listen on")
	dbURL := fl.String("db", "http://db:8080", "base URL of `shopd db`")
	if err := fl.Parse(args); err != nil {
		return err
	}
	return serve(*listen, appHandler(dbClient{base: strings.TrimSuffix(*dbURL, "/")}))
}
