#!/usr/bin/python3
"""An app that produces and consumes orders through kafka-sidecar, in plain gRPC.

It shows the patterns an app needs, with no Kafka client library:

  1. ProduceBatchStream (the fast path, the default): write records in batches of
     --batch_size on one stream; each batch gets one result (matched by batch_id) with one
     answer per record, in the batch's order: its partition and offset, or an error for that
     record alone. Or, with --produce=stream, ProduceStream: one record a message, one answer
     per record (matched by request_id). The sidecar stops reading when it holds
     --max_pending_produces unanswered records, so a fast app is slowed down by gRPC flow
     control instead of filling memory.
  2. Consume: subscribe (group, topics, max_in_flight), receive RecordBatches, process each
     record and ack it by delivery_id. An offset is committed only once it is acked.
  3. Nack, with the subscription's retry and dead-letter policies: a record that failed for a
     passing reason is given back and comes again after a backoff, with delivery_attempt one
     higher; the sidecar keeps its key's later records back until then (the app gives back
     only those it had received already), so the key stays in order. A record that can never
     be processed ("poison") is nacked with dead_letter and a reason: the sidecar writes it to
     <topic>.dead-letter with dlq.* headers and commits past it, so it does not block its key.
     The app then reads the dead letters back on a second Consume stream.

    /usr/bin/python3 orders_example.py --target=localhost:50051 --count=10

The stubs kafka_sidecar_pb2.py and kafka_sidecar_pb2_grpc.py must be importable: see README.md.
"""

import argparse
import json
import queue
import sys

try:
    import grpc
except ImportError:
    sys.exit("orders_example: no module grpc: run with /usr/bin/python3 and Debian's "
             "python3-grpcio and python3-protobuf (apt install python3-grpcio python3-protobuf)")
try:
    import kafka_sidecar_pb2 as pb
    import kafka_sidecar_pb2_grpc as pb_grpc
except ImportError as error:
    sys.exit(f"orders_example: {error}: generate the Python stubs first (see README.md) and put "
             "them next to this file or on PYTHONPATH")

# The consume subscription's policies. A nacked record comes again after MIN_BACKOFF_MS,
# doubling with each further nack up to MAX_BACKOFF_MS. A record nacked on its MAX_ATTEMPTS-th
# delivery goes to the dead-letter topic instead of coming again.
MIN_BACKOFF_MS = 200
MAX_BACKOFF_MS = 2000
MAX_ATTEMPTS = 5

STATUS_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


class TransientError(Exception):
    """Processing failed for a reason that may pass: try the record again later."""


class PoisonError(Exception):
    """The record can never be processed."""


# ---------------------------------------------------------------------------------------------
# Producing


def make_order(topic, request_id):
    """Order `request_id` (1, 2, ...) as a ProduceRequest whose request_id is the order id."""
    customers = ["customer-1", "customer-2", "customer-3"]
    customer = customers[(request_id - 1) % len(customers)]
    order = {"order_id": request_id, "customer": customer, "amount_cents": 100 * request_id}
    if request_id == 3:
        order["simulate"] = "transient-failure"  # fails the first time it is processed
    value = json.dumps(order).encode()
    if request_id == 5:
        value = b"poison"  # not JSON: can never be processed
    return pb.ProduceRequest(
        topic=topic,
        key=customer.encode(),  # one customer's orders keep their order, on one partition
        value=value,
        headers=[
            pb.Header(key="content-type", value=b"application/json"),
            pb.Header(key="source", value=b"orders_example.py"),
        ],
        request_id=request_id,
    )


def order_requests(topic, count, sent):
    """The ProduceRequests, made lazily: gRPC takes the next one only when flow control lets it.

    Every request is recorded in `sent` (request_id -> request) before it goes out, so each
    answer can be matched with its record.
    """
    for request_id in range(1, count + 1):
        request = make_order(topic, request_id)
        sent[request_id] = request
        yield request


def order_batches(topic, count, batch_size, sent):
    """The ProduceBatches of `batch_size` orders, made lazily like order_requests.

    Every batch is recorded in `sent` (batch_id -> batch) before it goes out.
    """
    for batch_id, first in enumerate(range(1, count + 1, batch_size), start=1):
        last = min(first + batch_size - 1, count)
        batch = pb.ProduceBatch(
            batch_id=batch_id,
            records=[make_order(topic, request_id) for request_id in range(first, last + 1)])
        sent[batch_id] = batch
        yield batch


def report_answer(answer, key):
    """Prints one record's answer; returns whether Kafka has the record."""
    if answer.HasField("error"):
        code = STATUS_NAMES.get(answer.error.code, str(answer.error.code))
        print(f"  record {answer.request_id} (key {key}) FAILED: {code}: {answer.error.message}")
        return False
    print(f"  record {answer.request_id} (key {key}) -> "
          f"{answer.topic}/{answer.partition}@{answer.offset}")
    return True


def produce_orders(stub, topic, count, timeout_s):
    """Produces `count` orders on one ProduceStream; returns how many Kafka has."""
    sent = {}
    produced = failed = 0
    # The request iterator runs in a gRPC thread while this one reads the answers, which come
    # in the order Kafka acknowledges the records (per partition), not necessarily sent order.
    answers = stub.ProduceStream(order_requests(topic, count, sent), timeout=timeout_s)
    for answer in answers:
        request = sent.pop(answer.request_id, None)
        key = request.key.decode() if request is not None else "?"
        if report_answer(answer, key):
            produced += 1
        else:
            failed += 1
    # The stream ended with OK: every record was answered (the sidecar guarantees it).
    if sent:
        print(f"  {len(sent)} records got no answer: {sorted(sent)}")
    if failed:
        print(f"  {failed} records failed")
    return produced


def produce_order_batches(stub, topic, count, batch_size, timeout_s):
    """Produces `count` orders on one ProduceBatchStream; returns how many Kafka has.

    Each batch gets one result once Kafka has answered all of its records, with one answer per
    record in the batch's order; results of different batches may come in any order.
    """
    sent = {}
    produced = failed = 0
    results = stub.ProduceBatchStream(order_batches(topic, count, batch_size, sent),
                                      timeout=timeout_s)
    for result in results:
        batch = sent.pop(result.batch_id, None)
        records = list(batch.records) if batch is not None else []
        for i, answer in enumerate(result.results):
            key = records[i].key.decode() if i < len(records) else "?"
            if report_answer(answer, key):
                produced += 1
            else:
                failed += 1
    # The stream ended with OK: every batch was answered (the sidecar guarantees it).
    if sent:
        missing = sorted(r.request_id for batch in sent.values() for r in batch.records)
        print(f"  {len(missing)} records got no answer: {missing}")
    if failed:
        print(f"  {failed} records failed")
    return produced


# ---------------------------------------------------------------------------------------------
# Consuming


def dead_letter_topic(topic):
    """Where the sidecar writes the records of `topic` that are given up on."""
    return topic + ".dead-letter"


class ConsumeRequests:
    """The app's side of a Consume stream: subscribe, then acks and nacks; close() half-closes."""

    def __init__(self, subscribe):
        self._queue = queue.Queue()
        self._queue.put(pb.ConsumeRequest(subscribe=subscribe))

    def ack(self, delivery_ids):
        if delivery_ids:
            self._queue.put(pb.ConsumeRequest(ack=pb.Ack(delivery_ids=delivery_ids)))

    def nack(self, delivery_id, reason, dead_letter=False):
        """Gives one record back; `reason` is kept in the dead-letter record's dlq.reason header
        should the record end up there; `dead_letter` sends it there at once."""
        self._queue.put(pb.ConsumeRequest(nack=pb.Nack(
            delivery_ids=[delivery_id], dead_letter=dead_letter, reason=reason)))

    def close(self):
        self._queue.put(None)

    def __iter__(self):
        while True:
            request = self._queue.get()
            if request is None:
                return  # half-close: the sidecar ends the stream, unacked records go elsewhere
            yield request


def describe(record):
    key = record.key.decode(errors="replace") if record.HasField("key") else "(null)"
    return (f"{record.topic}/{record.partition}@{record.offset} key={key} "
            f"attempt={record.delivery_attempt}")


def process(record):
    """The app's business logic for one order."""
    try:
        order = json.loads(record.value)
    except ValueError:
        raise PoisonError("the value is not JSON") from None
    if order.get("simulate") == "transient-failure" and record.delivery_attempt == 1:
        raise TransientError("the payment service timed out (simulated)")
    headers = {h.key: h.value.decode(errors="replace") for h in record.headers}
    print(f"  processed order {order['order_id']} of {order['customer']} "
          f"({order['amount_cents']} cents, from {headers.get('source', '?')}): {describe(record)}")


def route_of(record):
    """Records of one route come in order: a key within its partition (the partition itself for
    a null key)."""
    return (record.topic, record.partition, record.key if record.HasField("key") else None)


def consume_orders(stub, group, topic, count, max_in_flight, timeout_s):
    """Consumes until `count` distinct records are done; returns the counts.

    The subscription's policies do most of the work for a failed record. The sidecar sends a
    nacked record again after its backoff, and until it is acked or dead-lettered keeps back the
    later records of its key that it has not sent yet, while other keys flow; and it writes a
    record nacked with dead_letter (or on its MAX_ATTEMPTS-th attempt) to the dead-letter topic
    itself, with the dlq.* headers, and commits past it once Kafka has it. So the app neither
    produces dead letters nor acks them, and keeps no retry count.

    What the sidecar cannot keep back is what it sent already: later records of the key in the
    same batch, or in a batch sent before the nack arrived. The app gives those back too, until
    the nacked record is done, so the key's records are processed in order. They come again
    behind the nacked record, and only after it is done (the sidecar holds the key meanwhile).
    """
    done = set()  # (topic, partition, offset): at least once, so a record may come twice
    held = {}  # route -> the offset of its nacked record not yet done
    stats = {"redelivered": 0, "nacked": 0, "dead-lettered": 0}
    requests = ConsumeRequests(pb.Subscribe(
        group=group, topics=[topic], max_in_flight=max_in_flight,
        retry_policy=pb.RetryPolicy(min_backoff_ms=MIN_BACKOFF_MS, max_backoff_ms=MAX_BACKOFF_MS),
        dead_letter_policy=pb.DeadLetterPolicy(topic=dead_letter_topic(topic),
                                               max_delivery_attempts=MAX_ATTEMPTS)))
    responses = stub.Consume(iter(requests), timeout=timeout_s)
    try:
        for response in responses:
            if response.HasField("subscribed"):
                print(f"  subscribed: group {group}, stream {response.subscribed.stream_id}")
                continue
            acks = []
            for record in response.records.records:
                if record.delivery_attempt > 1:
                    stats["redelivered"] += 1
                route = route_of(record)
                if route in held and record.offset > held[route]:
                    reason = "an earlier record of its key was nacked"
                    print(f"  nack {describe(record)}: {reason}")
                    requests.nack(record.delivery_id, reason)
                    continue
                try:
                    process(record)
                    acks.append(record.delivery_id)
                except TransientError as error:
                    # Given back: it comes again after its backoff, with delivery_attempt one
                    # higher. On its last attempt the sidecar writes it to the dead-letter topic
                    # instead: done.
                    requests.nack(record.delivery_id, str(error))
                    if record.delivery_attempt < MAX_ATTEMPTS:
                        print(f"  nack {describe(record)}: {error}")
                        stats["nacked"] += 1
                        held.setdefault(route, record.offset)
                        continue
                    print(f"  nack {describe(record)} on its last attempt, to the dead-letter "
                          f"topic: {error}")
                    stats["dead-lettered"] += 1
                except PoisonError as error:
                    # It can never be processed: to the dead-letter topic at once, rather than
                    # through MAX_ATTEMPTS backoffs that hold its key back. Later records of its
                    # key need not wait for it: the app is done with it.
                    print(f"  nack {describe(record)} to the dead-letter topic: {error}")
                    requests.nack(record.delivery_id, str(error), dead_letter=True)
                    stats["dead-lettered"] += 1
                if held.get(route) == record.offset:
                    del held[route]
                done.add((record.topic, record.partition, record.offset))
            # One Ack per batch: fewer messages than one per record.
            requests.ack(acks)
            if len(done) >= count:
                break
    finally:
        requests.close()
    # Half-closed: the sidecar ends the stream with OK once it has read the acks and nacks (it
    # writes the dead letters on its own time). Records it sent meanwhile stay unacked and are
    # delivered again to the group's next stream.
    late = sum(len(r.records.records) for r in responses if r.HasField("records"))
    if late:
        print(f"  {late} records arrived after the last one needed; left unacked")
    return len(done), stats


def read_dead_letters(stub, group, topic, count, timeout_s):
    """Reads `count` records of the dead-letter topic `topic` as `group` and acks them.

    Prints each with why it was given up on and where it came from (the sidecar's dlq.*
    headers): how an app inspects its dead letters, or replays them (produce the value back to
    dlq.original.topic once the bug is fixed). A plain subscription, without policies. Returns
    how many it read.
    """
    read = 0
    requests = ConsumeRequests(pb.Subscribe(group=group, topics=[topic]))
    responses = stub.Consume(iter(requests), timeout=timeout_s)
    try:
        for response in responses:
            if response.HasField("subscribed"):
                print(f"  subscribed: group {group}, stream {response.subscribed.stream_id}")
                continue
            acks = []
            for record in response.records.records[:count - read]:  # more: left unacked
                headers = {h.key: h.value.decode(errors="replace") for h in record.headers}
                key = record.key.decode(errors="replace") if record.HasField("key") else "(null)"
                print(f"  dead letter: key={key} reason={headers.get('dlq.reason', '?')} "
                      f"attempts={headers.get('dlq.delivery.attempts', '?')} from "
                      f"{headers.get('dlq.original.topic', '?')}/"
                      f"{headers.get('dlq.original.partition', '?')}@"
                      f"{headers.get('dlq.original.offset', '?')}")
                acks.append(record.delivery_id)
            read += len(acks)
            requests.ack(acks)
            if read >= count:
                break
    finally:
        requests.close()
    for _ in responses:
        pass  # half-closed: the sidecar ends the stream once it has read the acks
    return read


# ---------------------------------------------------------------------------------------------


def explain(error, target):
    """A clear message for a failed call."""
    code = error.code()
    hints = {
        grpc.StatusCode.UNAVAILABLE:
            f"the sidecar at {target} is not reachable or is shutting down; try again when it "
            "is back (records not acked are delivered again)",
        grpc.StatusCode.DEADLINE_EXCEEDED:
            "no answer in time (for Consume: the records did not all arrive, or the sidecar "
            "dropped the stream as inactive)",
        grpc.StatusCode.INVALID_ARGUMENT: "the sidecar rejected the request",
        grpc.StatusCode.NOT_FOUND: "the topic (or partition) does not exist",
        grpc.StatusCode.PERMISSION_DENIED: "Kafka refused access",
        grpc.StatusCode.UNIMPLEMENTED: f"{target} does not serve kafka_sidecar.v1",
    }
    hint = hints.get(code, "the call failed")
    return f"{hint} [{code.name}: {error.details()}]"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="localhost:50051",
                        help="the sidecar: host:port or unix:/path (default %(default)s)")
    parser.add_argument("--topic", default="orders")
    parser.add_argument("--group", default="orders-example", help="Kafka consumer group")
    parser.add_argument("--count", type=int, default=10, help="records to produce and consume")
    parser.add_argument("--produce", choices=["batches", "stream"], default="batches",
                        help="ProduceBatchStream, --batch_size records a message (the fast "
                        "path), or ProduceStream, one record a message (default %(default)s)")
    parser.add_argument("--batch_size", type=int, default=5,
                        help="with --produce=batches: records per ProduceBatch")
    parser.add_argument("--max_in_flight", type=int, default=100,
                        help="unacked records the sidecar may send this stream")
    parser.add_argument("--ready_timeout_s", type=float, default=30,
                        help="how long to wait for the sidecar to accept connections")
    parser.add_argument("--timeout_s", type=float, default=60,
                        help="deadline of each call (producing; consuming all records)")
    args = parser.parse_args()
    if args.count < 1 or args.batch_size < 1:
        parser.error("--count and --batch_size must be 1 or more")

    # The sidecar is local: reconnect quickly when it restarts (gRPC's default backs off to 2 min).
    channel = grpc.insecure_channel(args.target, options=[("grpc.max_reconnect_backoff_ms", 1000)])
    try:
        grpc.channel_ready_future(channel).result(timeout=args.ready_timeout_s)
    except grpc.FutureTimeoutError:
        print(f"orders_example: the sidecar at {args.target} did not accept connections within "
              f"{args.ready_timeout_s:g} s", file=sys.stderr)
        return 1
    stub = pb_grpc.KafkaSidecarStub(channel)

    step = "producing"
    try:
        if args.produce == "batches":
            print(f"producing {args.count} orders to {args.topic} on one ProduceBatchStream, "
                  f"{args.batch_size} a batch")
            produced = produce_order_batches(stub, args.topic, args.count, args.batch_size,
                                             args.timeout_s)
        else:
            print(f"producing {args.count} orders to {args.topic} on one ProduceStream")
            produced = produce_orders(stub, args.topic, args.count, args.timeout_s)
        print(f"produced {produced}")
        if produced != args.count:
            print(f"orders_example: {args.count - produced} of {args.count} records were not "
                  "produced", file=sys.stderr)
            return 1

        step = "consuming"
        print(f"consuming {args.count} orders from {args.topic} as group {args.group}")
        consumed, stats = consume_orders(stub, args.group, args.topic, args.count,
                                         args.max_in_flight, args.timeout_s)

        def report():
            print(f"consumed {consumed}")
            for name, value in stats.items():
                print(f"{name} {value}")

        if consumed != args.count:
            report()
            print(f"orders_example: the stream ended after {consumed} of {args.count} records",
                  file=sys.stderr)
            return 1

        # Read the dead letters back in a group of their own: the orders' group is done with them.
        step = "reading dead letters"
        read_back = 0
        if stats["dead-lettered"]:
            group = args.group + "-dead-letters"
            print(f"reading {stats['dead-lettered']} dead letters from "
                  f"{dead_letter_topic(args.topic)} as group {group}")
            read_back = read_dead_letters(stub, group, dead_letter_topic(args.topic),
                                          stats["dead-lettered"], args.timeout_s)
        report()
        print(f"dead letters read back {read_back}")
        if read_back != stats["dead-lettered"]:
            print(f"orders_example: the dead-letter stream ended after {read_back} of "
                  f"{stats['dead-lettered']} records", file=sys.stderr)
            return 1
    except grpc.RpcError as error:
        print(f"orders_example: {step}: {explain(error, args.target)}", file=sys.stderr)
        return 1
    finally:
        channel.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
