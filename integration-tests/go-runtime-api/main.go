// A small Runtime API served by Go's net/http, the HTTP server Lambda's own Runtime API is
// built on. The conformance test runs our runtime against it to check, on the real server
// implementation, what the runtime relies on: pipelined requests answered in order,
// chunked events (Go chunks bodies over 2 KB), and a connection Go closes after refusing
// an oversized response.
//
// Usage: go-runtime-api EVENTS_FILE. Each line of EVENTS_FILE is one event. The server
// prints its address, then one line per answer ("<status> <id> <kind> <body>") and
// "connections <n>" once every event is answered. /next blocks after the last event.
package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
)

// The largest buffered response Lambda accepts.
const maxResponse = 6291556

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go-runtime-api EVENTS_FILE")
		os.Exit(2)
	}
	raw, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	events := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")

	var mu sync.Mutex
	connections, served, answered := 0, 0, 0
	out := bufio.NewWriter(os.Stdout)
	say := func(format string, args ...interface{}) {
		fmt.Fprintf(out, format+"\n", args...)
		out.Flush()
	}

	next := func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		i := served
		served++
		mu.Unlock()
		if i >= len(events) {
			// No more events: hold the long-poll open, as Lambda does.
			<-r.Context().Done()
			return
		}
		h := w.Header()
		h.Set("Lambda-Runtime-Aws-Request-Id", fmt.Sprintf("id-%d", i))
		h.Set("Lambda-Runtime-Deadline-Ms", "99999999999999")
		h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:go")
		h.Set("Content-Type", "application/json")
		io.WriteString(w, events[i])
	}
	answer := func(w http.ResponseWriter, r *http.Request, id, kind string) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, maxResponse+1))
		status := http.StatusAccepted
		reply := `{"status":"OK"}`
		if len(body) > maxResponse {
			// The rest of the body stays unread, so Go closes the connection after this.
			status = http.StatusRequestEntityTooLarge
			reply = `{"errorType":"RequestEntityTooLarge","errorMessage":"too large"}`
			body = body[:0]
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, reply)
		mu.Lock()
		defer mu.Unlock()
		answered++
		say("%d %s %s %s", status, id, kind, body)
		if answered == len(events) {
			say("connections %d", connections)
		}
	}
	const prefix = "/2018-06-01/runtime/invocation/"
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest := strings.TrimPrefix(r.URL.Path, prefix)
		parts := strings.Split(rest, "/")
		switch {
		case r.Method == http.MethodGet && r.URL.Path == prefix+"next":
			next(w, r)
		case r.Method == http.MethodPost && len(parts) == 2 && rest != r.URL.Path:
			answer(w, r, parts[0], parts[1])
		default:
			http.NotFound(w, r)
		}
	})

	server := &http.Server{
		Handler: handler,
		ConnState: func(_ net.Conn, state http.ConnState) {
			if state == http.StateNew {
				mu.Lock()
				connections++
				mu.Unlock()
			}
		},
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	say("%s", listener.Addr())
	fmt.Fprintln(os.Stderr, server.Serve(listener))
	os.Exit(1)
}
