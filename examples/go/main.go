// Command orders_example is an app that produces and consumes orders through kafka-sidecar, in
// plain gRPC with grpc-go: no Kafka client library. It does what the C++ and Python examples do:
//
//  1. ProduceBatchStream (the fast path): orders in batches of -batch_size on one stream; each
//     batch gets one result (matched by batch_id) with one answer per record, in the batch's
//     order: its partition and offset, or an error for that record alone.
//  2. Consume on -streams streams of one subscription (one group): the sidecar spreads the
//     records over them by key. Each record is processed and acked by delivery_id; an offset is
//     committed only once it is acked.
//  3. Nack, with the subscription's retry and dead-letter policies: order 3 fails for a passing
//     reason on its first delivery and is nacked (it comes again after a backoff, with
//     delivery_attempt 2); order 5 is poison and is nacked with dead_letter (the sidecar writes
//     it to <topic>.dead-letter with dlq.* headers). The dead letters are read back on a second
//     subscription.
//
// Build and run it with run.sh here, which generates the gRPC code from
// proto/kafka_sidecar.proto with protoc-gen-go and protoc-gen-go-grpc (versions pinned in go.mod).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "kafka-sidecar/examples/go/kafkasidecarv1"
)

// The consume subscription's policies: a nacked record comes again after minBackoffMs,
// doubling up to maxBackoffMs; one nacked on its maxAttempts-th delivery goes to the dead-letter
// topic.
const (
	minBackoffMs = 200
	maxBackoffMs = 2000
	maxAttempts  = 5
)

var (
	target       = flag.String("target", "localhost:50051", "the sidecar: host:port or unix:/path")
	topic        = flag.String("topic", "orders", "topic to produce to and consume from")
	group        = flag.String("group", "orders-example", "Kafka consumer group")
	count        = flag.Int("count", 10, "records to produce and consume")
	batchSize    = flag.Int("batch_size", 5, "records per ProduceBatch")
	streams      = flag.Int("streams", 3, "Consume streams of the one subscription")
	maxInFlight  = flag.Uint("max_in_flight", 100, "unacked records the sidecar may send a stream")
	readyTimeout = flag.Duration("ready_timeout", 30*time.Second, "how long to wait for the sidecar to accept connections")
	timeout      = flag.Duration("timeout", 60*time.Second, "deadline of each step (producing; consuming all records)")
)

// errTransient: processing failed for a reason that may pass; errPoison: it never can succeed.
var (
	errTransient = errors.New("the payment service timed out (simulated)")
	errPoison    = errors.New("the value is not JSON")
)

type order struct {
	OrderID     int    `json:"order_id"`
	Customer    string `json:"customer"`
	AmountCents int    `json:"amount_cents"`
	Simulate    string `json:"simulate,omitempty"`
}

func deadLetterTopic(t string) string { return t + ".dead-letter" }

// makeOrder is order `id` (1, 2, ...) as a ProduceRequest whose request_id is the order id.
func makeOrder(id int) *pb.ProduceRequest {
	customer := fmt.Sprintf("customer-%d", (id-1)%3+1)
	o := order{OrderID: id, Customer: customer, AmountCents: 100 * id}
	if id == 3 {
		o.Simulate = "transient-failure" // fails the first time it is processed
	}
	value, _ := json.Marshal(o)
	if id == 5 {
		value = []byte("poison") // not JSON: can never be processed
	}
	return &pb.ProduceRequest{
		Topic: *topic,
		Key:   []byte(customer), // one customer's orders keep their order, on one partition
		Value: value,
		Headers: []*pb.Header{
			{Key: "content-type", Value: []byte("application/json")},
			{Key: "source", Value: []byte("orders_example.go")},
		},
		RequestId: uint64(id),
	}
}

// produceOrders writes the orders on one ProduceBatchStream and returns how many Kafka has.
// Batches are written by one goroutine while this one reads the results, which come as Kafka
// acknowledges whole batches (not necessarily in the order sent).
func produceOrders(ctx context.Context, client pb.KafkaSidecarClient) (int, error) {
	stream, err := client.ProduceBatchStream(ctx)
	if err != nil {
		return 0, err
	}
	var mu sync.Mutex
	sent := map[uint64]*pb.ProduceBatch{}
	sendErr := make(chan error, 1)
	go func() {
		for id, batchID := 1, uint64(1); id <= *count; batchID++ {
			batch := &pb.ProduceBatch{BatchId: batchID}
			for ; id <= *count && len(batch.Records) < *batchSize; id++ {
				batch.Records = append(batch.Records, makeOrder(id))
			}
			mu.Lock()
			sent[batchID] = batch
			mu.Unlock()
			// Blocks while the sidecar holds --max_pending_produces records: flow control.
			if err := stream.Send(batch); err != nil {
				sendErr <- err // the stream ended: Recv says why
				return
			}
		}
		sendErr <- stream.CloseSend()
	}()
	produced := 0
	for {
		result, err := stream.Recv()
		if err == io.EOF {
			break // every batch was answered (the sidecar guarantees it)
		}
		if err != nil {
			return produced, err
		}
		mu.Lock()
		batch := sent[result.BatchId]
		delete(sent, result.BatchId)
		mu.Unlock()
		for i, answer := range result.Results {
			key := "?"
			if batch != nil && i < len(batch.Records) {
				key = string(batch.Records[i].Key)
			}
			if answer.Error != nil {
				fmt.Printf("  record %d (key %s) FAILED: %s: %s\n", answer.RequestId, key,
					codes.Code(answer.Error.Code), answer.Error.Message)
				continue
			}
			fmt.Printf("  record %d (key %s) -> %s/%d@%d\n", answer.RequestId, key, answer.Topic,
				answer.Partition, answer.Offset)
			produced++
		}
	}
	if err := <-sendErr; err != nil {
		return produced, err
	}
	return produced, nil
}

func describe(r *pb.Record) string {
	key := "(null)"
	if r.Key != nil {
		key = string(r.Key)
	}
	return fmt.Sprintf("%s/%d@%d key=%s attempt=%d", r.Topic, r.Partition, r.Offset, key,
		r.DeliveryAttempt)
}

func headers(r *pb.Record) map[string]string {
	h := map[string]string{}
	for _, header := range r.Headers {
		h[header.Key] = string(header.Value)
	}
	return h
}

// process is the app's business logic for one order.
func process(r *pb.Record) error {
	var o order
	if err := json.Unmarshal(r.Value, &o); err != nil {
		return errPoison
	}
	if o.Simulate == "transient-failure" && r.DeliveryAttempt == 1 {
		return errTransient
	}
	fmt.Printf("  processed order %d of %s (%d cents, from %s): %s\n", o.OrderID, o.Customer,
		o.AmountCents, headers(r)["source"], describe(r))
	return nil
}

// route: records of one route come in order (a key within its partition).
type route struct {
	topic     string
	partition int32
	key       string
	nullKey   bool
}

// consumer is what the streams of one subscription share.
type consumer struct {
	mu    sync.Mutex
	done  map[[2]int64]bool // (partition, offset) done: at least once, so a record may come twice
	held  map[route]int64   // route -> the offset of its nacked record not yet done
	stats struct{ redelivered, nacked, deadLettered int }
	// Closed once count records are done: every stream half-closes.
	finished     chan struct{}
	finishedOnce sync.Once
}

// consumeStream runs one Consume stream of the subscription until the consumer is finished.
func (c *consumer) consumeStream(ctx context.Context, client pb.KafkaSidecarClient, name string) error {
	stream, err := client.Consume(ctx)
	if err != nil {
		return err
	}
	var sendMu sync.Mutex // Send and CloseSend from two goroutines
	send := func(req *pb.ConsumeRequest) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return stream.Send(req)
	}
	if err := send(&pb.ConsumeRequest{Request: &pb.ConsumeRequest_Subscribe{Subscribe: &pb.Subscribe{
		Group: *group, Topics: []string{*topic}, MaxInFlight: uint32(*maxInFlight),
		RetryPolicy: &pb.RetryPolicy{MinBackoffMs: minBackoffMs, MaxBackoffMs: maxBackoffMs},
		DeadLetterPolicy: &pb.DeadLetterPolicy{Topic: deadLetterTopic(*topic),
			MaxDeliveryAttempts: maxAttempts},
	}}}); err != nil {
		return err
	}
	// Once the consumer is finished, half-close: the sidecar ends the stream with OK once it
	// has read the acks; records it sent meanwhile stay unacked and go to the group's next
	// stream.
	go func() {
		select {
		case <-c.finished:
		case <-ctx.Done():
		}
		sendMu.Lock()
		defer sendMu.Unlock()
		stream.CloseSend()
	}()
	for {
		response, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if s := response.GetSubscribed(); s != nil {
			fmt.Printf("  %s subscribed: group %s, stream %s\n", name, *group, s.StreamId)
			continue
		}
		var acks []uint64
		for _, r := range response.GetRecords().GetRecords() {
			nack, deadLetter, reason := c.handle(r)
			if !nack {
				acks = append(acks, r.DeliveryId)
				continue
			}
			if err := send(&pb.ConsumeRequest{Request: &pb.ConsumeRequest_Nack{Nack: &pb.Nack{
				DeliveryIds: []uint64{r.DeliveryId}, DeadLetter: deadLetter, Reason: reason,
			}}}); err != nil {
				return err
			}
		}
		// One Ack per batch: fewer messages than one per record.
		if len(acks) > 0 {
			if err := send(&pb.ConsumeRequest{Request: &pb.ConsumeRequest_Ack{
				Ack: &pb.Ack{DeliveryIds: acks}}}); err != nil {
				return err
			}
		}
	}
}

// handle processes one record: it is acked (nack false), or nacked with `reason` (and
// `deadLetter` for a poison). A record of a key whose earlier record was nacked and is not yet
// done is given back too, so the key's records are processed in order: the sidecar holds the
// key's later records meanwhile, but cannot take back those it had sent already.
func (c *consumer) handle(r *pb.Record) (nack, deadLetter bool, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.DeliveryAttempt > 1 {
		c.stats.redelivered++
	}
	rt := route{topic: r.Topic, partition: r.Partition, key: string(r.Key), nullKey: r.Key == nil}
	if offset, ok := c.held[rt]; ok && r.Offset > offset {
		reason = "an earlier record of its key was nacked"
		fmt.Printf("  nack %s: %s\n", describe(r), reason)
		return true, false, reason
	}
	err := process(r)
	switch {
	case errors.Is(err, errTransient) && r.DeliveryAttempt < maxAttempts:
		// Given back: it comes again after its backoff, with delivery_attempt one higher.
		fmt.Printf("  nack %s: %v\n", describe(r), err)
		c.stats.nacked++
		if _, ok := c.held[rt]; !ok {
			c.held[rt] = r.Offset
		}
		return true, false, err.Error()
	case err != nil:
		// Poison, or a passing failure on its last attempt: the sidecar writes it to the
		// dead-letter topic (at once, with dead_letter) and commits past it once Kafka has it.
		fmt.Printf("  nack %s to the dead-letter topic: %v\n", describe(r), err)
		c.stats.deadLettered++
		nack, deadLetter, reason = true, errors.Is(err, errPoison), err.Error()
	}
	if offset, ok := c.held[rt]; ok && offset == r.Offset {
		delete(c.held, rt)
	}
	c.done[[2]int64{int64(r.Partition), r.Offset}] = true
	if len(c.done) >= *count {
		c.finishedOnce.Do(func() { close(c.finished) })
	}
	return nack, deadLetter, reason
}

// consumeOrders consumes on -streams streams until count records are done.
func consumeOrders(ctx context.Context, client pb.KafkaSidecarClient) (*consumer, error) {
	c := &consumer{done: map[[2]int64]bool{}, held: map[route]int64{}, finished: make(chan struct{})}
	errs := make(chan error, *streams)
	for i := 0; i < *streams; i++ {
		go func(name string) { errs <- c.consumeStream(ctx, client, name) }(fmt.Sprintf("stream %d", i+1))
	}
	var first error
	for i := 0; i < *streams; i++ {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return c, first
}

// readDeadLetters reads n records of the dead-letter topic as their own group, acks them, and
// prints why each was given up on and where it came from (the sidecar's dlq.* headers).
func readDeadLetters(ctx context.Context, client pb.KafkaSidecarClient, n int) (int, error) {
	stream, err := client.Consume(ctx)
	if err != nil {
		return 0, err
	}
	if err := stream.Send(&pb.ConsumeRequest{Request: &pb.ConsumeRequest_Subscribe{
		Subscribe: &pb.Subscribe{Group: *group + "-dead-letters",
			Topics: []string{deadLetterTopic(*topic)}}}}); err != nil {
		return 0, err
	}
	read := 0
	for read < n {
		response, err := stream.Recv()
		if err != nil {
			return read, err
		}
		var acks []uint64
		for _, r := range response.GetRecords().GetRecords() {
			if read+len(acks) == n {
				break // more: left unacked
			}
			h := headers(r)
			fmt.Printf("  dead letter: key=%s reason=%s attempts=%s from %s/%s@%s\n", r.Key,
				h["dlq.reason"], h["dlq.delivery.attempts"], h["dlq.original.topic"],
				h["dlq.original.partition"], h["dlq.original.offset"])
			acks = append(acks, r.DeliveryId)
		}
		read += len(acks)
		if len(acks) > 0 {
			if err := stream.Send(&pb.ConsumeRequest{Request: &pb.ConsumeRequest_Ack{
				Ack: &pb.Ack{DeliveryIds: acks}}}); err != nil {
				return read, err
			}
		}
	}
	stream.CloseSend()
	for {
		// Half-closed: the sidecar ends the stream once it has read the acks.
		if _, err := stream.Recv(); err != nil {
			return read, nil
		}
	}
}

// explain gives a failed call a clear message.
func explain(err error) string {
	hints := map[codes.Code]string{
		codes.Unavailable:      "the sidecar at " + *target + " is not reachable or is shutting down; try again when it is back (records not acked are delivered again)",
		codes.DeadlineExceeded: "no answer in time (for Consume: the records did not all arrive)",
		codes.InvalidArgument:  "the sidecar rejected the request",
		codes.NotFound:         "the topic (or partition) does not exist",
		codes.PermissionDenied: "Kafka refused access",
		codes.Unimplemented:    *target + " does not serve kafka_sidecar.v1",
	}
	s := status.Convert(err)
	hint, ok := hints[s.Code()]
	if !ok {
		hint = "the call failed"
	}
	return fmt.Sprintf("%s [%s: %s]", hint, s.Code(), s.Message())
}

func run() error {
	if *count < 1 || *batchSize < 1 || *streams < 1 {
		return errors.New("-count, -batch_size and -streams must be 1 or more")
	}
	conn, err := grpc.NewClient(*target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	// Wait for the sidecar to accept connections, within a deadline.
	readyCtx, cancelReady := context.WithTimeout(context.Background(), *readyTimeout)
	defer cancelReady()
	conn.Connect()
	for state := conn.GetState(); state != connectivity.Ready; state = conn.GetState() {
		if !conn.WaitForStateChange(readyCtx, state) {
			return fmt.Errorf("the sidecar at %s did not accept connections within %s", *target, *readyTimeout)
		}
	}
	client := pb.NewKafkaSidecarClient(conn)

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	fmt.Printf("producing %d orders to %s on one ProduceBatchStream, %d a batch\n", *count, *topic, *batchSize)
	produced, err := produceOrders(ctx, client)
	if err != nil {
		return fmt.Errorf("producing: %s", explain(err))
	}
	fmt.Printf("produced %d\n", produced)
	if produced != *count {
		return fmt.Errorf("%d of %d records were not produced", *count-produced, *count)
	}

	ctx, cancel = context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	fmt.Printf("consuming %d orders from %s as group %s on %d streams\n", *count, *topic, *group, *streams)
	c, err := consumeOrders(ctx, client)
	c.mu.Lock()
	consumed, stats := len(c.done), c.stats
	c.mu.Unlock()
	report := func() {
		fmt.Printf("consumed %d\nredelivered %d\nnacked %d\ndead-lettered %d\n", consumed,
			stats.redelivered, stats.nacked, stats.deadLettered)
	}
	if err != nil {
		report()
		return fmt.Errorf("consuming: %s", explain(err))
	}
	if consumed != *count {
		report()
		return fmt.Errorf("the streams ended after %d of %d records", consumed, *count)
	}

	// The dead letters, read back in a group of their own.
	readBack := 0
	if stats.deadLettered > 0 {
		ctx, cancel = context.WithTimeout(context.Background(), *timeout)
		defer cancel()
		fmt.Printf("reading %d dead letters from %s\n", stats.deadLettered, deadLetterTopic(*topic))
		if readBack, err = readDeadLetters(ctx, client, stats.deadLettered); err != nil {
			return fmt.Errorf("reading dead letters: %s", explain(err))
		}
	}
	report()
	fmt.Printf("dead letters read back %d\n", readBack)
	if readBack != stats.deadLettered {
		return fmt.Errorf("read back %d of %d dead letters", readBack, stats.deadLettered)
	}
	return nil
}

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "orders_example: %v\n", err)
		os.Exit(1)
	}
}
