package kafkasidecar.examples;

import com.google.protobuf.ByteString;
import io.grpc.ConnectivityState;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollDomainSocketChannel;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollEventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.unix.DomainSocketAddress;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.grpc.stub.StreamObserver;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import kafka_sidecar.v1.KafkaSidecarGrpc;
import kafka_sidecar.v1.KafkaSidecarOuterClass.Ack;
import kafka_sidecar.v1.KafkaSidecarOuterClass.ConsumeRequest;
import kafka_sidecar.v1.KafkaSidecarOuterClass.ConsumeResponse;
import kafka_sidecar.v1.KafkaSidecarOuterClass.DeadLetterPolicy;
import kafka_sidecar.v1.KafkaSidecarOuterClass.Header;
import kafka_sidecar.v1.KafkaSidecarOuterClass.Nack;
import kafka_sidecar.v1.KafkaSidecarOuterClass.ProduceBatch;
import kafka_sidecar.v1.KafkaSidecarOuterClass.ProduceBatchResult;
import kafka_sidecar.v1.KafkaSidecarOuterClass.ProduceRequest;
import kafka_sidecar.v1.KafkaSidecarOuterClass.ProduceResponse;
import kafka_sidecar.v1.KafkaSidecarOuterClass.Record;
import kafka_sidecar.v1.KafkaSidecarOuterClass.RetryPolicy;
import kafka_sidecar.v1.KafkaSidecarOuterClass.Subscribe;

/**
 * An app that produces and consumes orders through kafka-sidecar with grpc-java: no Kafka client
 * library. It does what the C++, Python and Go examples do:
 *
 * <ol>
 *   <li>ProduceBatchStream (the fast path): orders in batches of --batch_size on one stream,
 *       written only while gRPC says the stream is ready (flow control: the sidecar stops reading
 *       at --max_pending_produces records). Each batch gets one result, matched by batch_id,
 *       with one answer per record in the batch's order.
 *   <li>Consume on --streams streams of one subscription: the sidecar spreads the records over
 *       them by key. Each record is processed and acked by delivery_id; an offset is committed
 *       only once it is acked.
 *   <li>Nack, with the subscription's retry and dead-letter policies: order 3 fails once and
 *       comes again after a backoff (delivery_attempt 2); order 5 is poison and is nacked with
 *       dead_letter. The dead letters are read back on a second subscription.
 * </ol>
 *
 * <pre>java -jar target/orders-example.jar --target=localhost:50051 --count=10</pre>
 */
public final class OrdersExample {
  // A nacked record comes again after MIN_BACKOFF_MS, doubling up to MAX_BACKOFF_MS; one nacked
  // on its MAX_ATTEMPTS-th delivery goes to the dead-letter topic.
  private static final int MIN_BACKOFF_MS = 200;
  private static final int MAX_BACKOFF_MS = 2000;
  private static final int MAX_ATTEMPTS = 5;

  private final String topic;
  private final String group;
  private final int count;
  private final int batchSize;
  private final int streams;
  private final long timeoutS;
  private final KafkaSidecarGrpc.KafkaSidecarStub stub;

  private OrdersExample(Map<String, String> flags, ManagedChannel channel) {
    topic = flags.getOrDefault("topic", "orders");
    group = flags.getOrDefault("group", "orders-example");
    count = Integer.parseInt(flags.getOrDefault("count", "10"));
    batchSize = Integer.parseInt(flags.getOrDefault("batch_size", "5"));
    streams = Integer.parseInt(flags.getOrDefault("streams", "3"));
    timeoutS = Long.parseLong(flags.getOrDefault("timeout_s", "60"));
    if (count < 1 || batchSize < 1 || streams < 1) {
      throw new IllegalArgumentException("--count, --batch_size and --streams must be 1 or more");
    }
    stub = KafkaSidecarGrpc.newStub(channel);
  }

  private String deadLetterTopic() {
    return topic + ".dead-letter";
  }

  /** Order {@code id} (1, 2, ...) as a ProduceRequest whose request_id is the order id. */
  private ProduceRequest order(int id) {
    String customer = "customer-" + ((id - 1) % 3 + 1);
    String value =
        id == 5
            ? "poison" // not JSON: can never be processed
            : String.format(
                "{\"order_id\": %d, \"customer\": \"%s\", \"amount_cents\": %d%s}",
                id, customer, 100 * id, id == 3 ? ", \"simulate\": \"transient-failure\"" : "");
    return ProduceRequest.newBuilder()
        .setTopic(topic)
        .setKey(ByteString.copyFromUtf8(customer)) // one customer's orders keep their order
        .setValue(ByteString.copyFromUtf8(value))
        .addHeaders(Header.newBuilder().setKey("content-type").setValue(bytes("application/json")))
        .addHeaders(Header.newBuilder().setKey("source").setValue(bytes("OrdersExample.java")))
        .setRequestId(id)
        .build();
  }

  private static ByteString bytes(String s) {
    return ByteString.copyFromUtf8(s);
  }

  /** Produces the orders on one ProduceBatchStream; returns how many Kafka has. */
  private int produce() throws Exception {
    Map<Long, ProduceBatch> sent = new ConcurrentHashMap<>();
    int[] produced = {0};
    CompletableFuture<Void> done = new CompletableFuture<>();
    stub.withDeadlineAfter(timeoutS, TimeUnit.SECONDS)
        .produceBatchStream(
            new ClientResponseObserver<ProduceBatch, ProduceBatchResult>() {
              private int next = 1;
              private long batchId = 1;
              private boolean halfClosed;

              @Override
              public void beforeStart(ClientCallStreamObserver<ProduceBatch> requests) {
                // Write only while the stream is ready: when the sidecar stops reading, gRPC
                // stops being ready, and this waits instead of buffering without bound.
                requests.setOnReadyHandler(
                    () -> {
                      while (requests.isReady() && next <= count) {
                        ProduceBatch.Builder batch = ProduceBatch.newBuilder().setBatchId(batchId);
                        for (; next <= count && batch.getRecordsCount() < batchSize; next++) {
                          batch.addRecords(order(next));
                        }
                        ProduceBatch built = batch.build();
                        sent.put(batchId++, built);
                        requests.onNext(built);
                      }
                      if (next > count && !halfClosed) {
                        halfClosed = true;
                        requests.onCompleted();
                      }
                    });
              }

              @Override
              public void onNext(ProduceBatchResult result) {
                ProduceBatch batch = sent.remove(result.getBatchId());
                for (int i = 0; i < result.getResultsCount(); i++) {
                  ProduceResponse answer = result.getResults(i);
                  String key =
                      batch != null && i < batch.getRecordsCount()
                          ? batch.getRecords(i).getKey().toStringUtf8()
                          : "?";
                  if (answer.hasError()) {
                    System.out.printf(
                        "  record %d (key %s) FAILED: %s: %s%n",
                        answer.getRequestId(), key,
                        Status.fromCodeValue(answer.getError().getCode()).getCode(),
                        answer.getError().getMessage());
                    continue;
                  }
                  System.out.printf(
                      "  record %d (key %s) -> %s/%d@%d%n",
                      answer.getRequestId(), key, answer.getTopic(), answer.getPartition(),
                      answer.getOffset());
                  produced[0]++;
                }
              }

              @Override
              public void onError(Throwable t) {
                done.completeExceptionally(t);
              }

              @Override
              public void onCompleted() {
                done.complete(null); // every batch was answered (the sidecar guarantees it)
              }
            });
    done.get();
    return produced[0];
  }

  /** What the streams of one subscription share; every method is synchronized. */
  private final class Consumer {
    final Set<String> done = new HashSet<>(); // "partition@offset": a record may come twice
    final Map<String, Long> held = new HashMap<>(); // route -> its nacked record not yet done
    int redelivered;
    int nacked;
    int deadLettered;
    final CompletableFuture<Void> finished = new CompletableFuture<>();

    /** Processes a record: null to ack it, or the nack to send. */
    synchronized Nack handle(Record r) {
      if (r.getDeliveryAttempt() > 1) redelivered++;
      String route = r.getTopic() + "/" + r.getPartition() + "/"
          + (r.hasKey() ? r.getKey().toStringUtf8() : "(null)");
      Long heldOffset = held.get(route);
      Nack.Builder nack = Nack.newBuilder().addDeliveryIds(r.getDeliveryId());
      if (heldOffset != null && r.getOffset() > heldOffset) {
        // The sidecar holds the key's later records until the nacked one is done, but cannot
        // take back what it had sent already: give those back too, so the key stays in order.
        String reason = "an earlier record of its key was nacked";
        System.out.printf("  nack %s: %s%n", describe(r), reason);
        return nack.setReason(reason).build();
      }
      String value = r.getValue().toStringUtf8();
      Nack result = null;
      if (!value.startsWith("{")) {
        // Poison: to the dead-letter topic at once; the sidecar commits past it once written.
        System.out.printf("  nack %s to the dead-letter topic: the value is not JSON%n", describe(r));
        deadLettered++;
        result = nack.setDeadLetter(true).setReason("the value is not JSON").build();
      } else if (value.contains("transient-failure") && r.getDeliveryAttempt() == 1) {
        String reason = "the payment service timed out (simulated)";
        System.out.printf("  nack %s: %s%n", describe(r), reason);
        nacked++;
        held.putIfAbsent(route, r.getOffset());
        return nack.setReason(reason).build();
      } else {
        System.out.printf("  processed order %s: %s%n", value, describe(r));
      }
      if (heldOffset != null && heldOffset == r.getOffset()) held.remove(route);
      done.add(r.getPartition() + "@" + r.getOffset());
      if (done.size() >= count) finished.complete(null);
      return result;
    }
  }

  private static String describe(Record r) {
    return String.format(
        "%s/%d@%d key=%s attempt=%d", r.getTopic(), r.getPartition(), r.getOffset(),
        r.hasKey() ? r.getKey().toStringUtf8() : "(null)", r.getDeliveryAttempt());
  }

  /** One Consume stream; completes once the sidecar ends it after the half-close. */
  private CompletableFuture<Void> consumeStream(Consumer consumer, String name) {
    CompletableFuture<Void> ended = new CompletableFuture<>();
    // Requests go out from gRPC's thread and the finisher's; none after the half-close (records
    // that arrive then stay unacked and go to the group's next stream).
    Object sendLock = new Object();
    boolean[] halfClosed = {false};
    @SuppressWarnings("unchecked")
    StreamObserver<ConsumeRequest>[] requests = new StreamObserver[1];
    requests[0] =
        stub.withDeadlineAfter(timeoutS, TimeUnit.SECONDS)
            .consume(
                new StreamObserver<ConsumeResponse>() {
                  @Override
                  public void onNext(ConsumeResponse response) {
                    if (response.hasSubscribed()) {
                      System.out.printf("  %s subscribed: group %s, stream %s%n", name, group,
                          response.getSubscribed().getStreamId());
                      return;
                    }
                    List<Long> acks = new ArrayList<>();
                    for (Record r : response.getRecords().getRecordsList()) {
                      Nack nack = consumer.handle(r);
                      if (nack == null) {
                        acks.add(r.getDeliveryId());
                        continue;
                      }
                      synchronized (sendLock) {
                        if (!halfClosed[0]) {
                          requests[0].onNext(ConsumeRequest.newBuilder().setNack(nack).build());
                        }
                      }
                    }
                    if (!acks.isEmpty()) { // one Ack per batch
                      synchronized (sendLock) {
                        if (!halfClosed[0]) {
                          requests[0].onNext(ConsumeRequest.newBuilder()
                              .setAck(Ack.newBuilder().addAllDeliveryIds(acks)).build());
                        }
                      }
                    }
                  }

                  @Override
                  public void onError(Throwable t) {
                    ended.completeExceptionally(t);
                  }

                  @Override
                  public void onCompleted() {
                    ended.complete(null);
                  }
                });
    synchronized (sendLock) {
      requests[0].onNext(ConsumeRequest.newBuilder().setSubscribe(Subscribe.newBuilder()
          .setGroup(group).addTopics(topic).setMaxInFlight(100)
          .setRetryPolicy(RetryPolicy.newBuilder()
              .setMinBackoffMs(MIN_BACKOFF_MS).setMaxBackoffMs(MAX_BACKOFF_MS))
          .setDeadLetterPolicy(DeadLetterPolicy.newBuilder()
              .setTopic(deadLetterTopic()).setMaxDeliveryAttempts(MAX_ATTEMPTS))).build());
    }
    // Once every record is done, half-close: the sidecar ends the stream with OK once it has
    // read the acks; what it sent meanwhile stays unacked and goes to the group's next stream.
    consumer.finished.thenRun(() -> {
      synchronized (sendLock) {
        halfClosed[0] = true;
        requests[0].onCompleted();
      }
    });
    return ended;
  }

  /** Reads n dead letters as their own group, acks them and prints their dlq.* headers. */
  private int readDeadLetters(int n) throws Exception {
    CompletableFuture<Void> ended = new CompletableFuture<>();
    int[] read = {0};
    @SuppressWarnings("unchecked")
    StreamObserver<ConsumeRequest>[] requests = new StreamObserver[1];
    requests[0] =
        stub.withDeadlineAfter(timeoutS, TimeUnit.SECONDS)
            .consume(
                new StreamObserver<ConsumeResponse>() {
                  @Override
                  public synchronized void onNext(ConsumeResponse response) {
                    List<Long> acks = new ArrayList<>();
                    for (Record r : response.getRecords().getRecordsList()) {
                      if (read[0] + acks.size() == n) break; // more: left unacked
                      Map<String, String> h = new HashMap<>();
                      for (Header header : r.getHeadersList()) {
                        h.put(header.getKey(), header.getValue().toString(StandardCharsets.UTF_8));
                      }
                      System.out.printf("  dead letter: key=%s reason=%s attempts=%s from %s/%s@%s%n",
                          r.getKey().toStringUtf8(), h.get("dlq.reason"),
                          h.get("dlq.delivery.attempts"), h.get("dlq.original.topic"),
                          h.get("dlq.original.partition"), h.get("dlq.original.offset"));
                      acks.add(r.getDeliveryId());
                    }
                    if (acks.isEmpty()) return;
                    read[0] += acks.size();
                    requests[0].onNext(ConsumeRequest.newBuilder()
                        .setAck(Ack.newBuilder().addAllDeliveryIds(acks)).build());
                    if (read[0] == n) requests[0].onCompleted(); // half-close
                  }

                  @Override
                  public void onError(Throwable t) {
                    ended.completeExceptionally(t);
                  }

                  @Override
                  public void onCompleted() {
                    ended.complete(null);
                  }
                });
    requests[0].onNext(ConsumeRequest.newBuilder().setSubscribe(Subscribe.newBuilder()
        .setGroup(group + "-dead-letters").addTopics(deadLetterTopic())).build());
    ended.get();
    return read[0];
  }

  private int run() throws Exception {
    System.out.printf(
        "producing %d orders to %s on one ProduceBatchStream, %d a batch%n", count, topic, batchSize);
    int produced = produce();
    System.out.printf("produced %d%n", produced);
    if (produced != count) {
      System.err.printf("orders_example: %d of %d records were not produced%n", count - produced, count);
      return 1;
    }

    System.out.printf("consuming %d orders from %s as group %s on %d streams%n", count, topic,
        group, streams);
    Consumer consumer = new Consumer();
    List<CompletableFuture<Void>> ended = new ArrayList<>();
    for (int i = 1; i <= streams; i++) ended.add(consumeStream(consumer, "stream " + i));
    for (CompletableFuture<Void> e : ended) e.get();
    int consumed;
    int redelivered;
    int nacked;
    int deadLettered;
    synchronized (consumer) {
      consumed = consumer.done.size();
      redelivered = consumer.redelivered;
      nacked = consumer.nacked;
      deadLettered = consumer.deadLettered;
    }

    int readBack = 0;
    if (deadLettered > 0) {
      System.out.printf("reading %d dead letters from %s%n", deadLettered, deadLetterTopic());
      readBack = readDeadLetters(deadLettered);
    }
    System.out.printf("consumed %d%nredelivered %d%nnacked %d%ndead-lettered %d%n", consumed,
        redelivered, nacked, deadLettered);
    System.out.printf("dead letters read back %d%n", readBack);
    return consumed == count && readBack == deadLettered ? 0 : 1;
  }

  /** --name=value flags. */
  private static Map<String, String> parseFlags(String[] args) {
    Map<String, String> flags = new HashMap<>();
    for (String arg : args) {
      if (!arg.startsWith("--") || !arg.contains("=")) {
        throw new IllegalArgumentException("expected --name=value, got " + arg);
      }
      flags.put(arg.substring(2, arg.indexOf('=')), arg.substring(arg.indexOf('=') + 1));
    }
    return flags;
  }

  /** A channel to the sidecar: host:port, or unix:/path (Netty's epoll transport). */
  private static ManagedChannel channelTo(String target) {
    if (target.startsWith("unix:")) {
      return NettyChannelBuilder.forAddress(new DomainSocketAddress(target.substring(5)))
          .eventLoopGroup(new EpollEventLoopGroup())
          .channelType(EpollDomainSocketChannel.class)
          .usePlaintext()
          .build();
    }
    return NettyChannelBuilder.forTarget(target).usePlaintext().build();
  }

  public static void main(String[] args) throws Exception {
    Map<String, String> flags;
    try {
      flags = parseFlags(args);
    } catch (IllegalArgumentException e) {
      System.err.println("orders_example: " + e.getMessage()
          + " (flags: --target --topic --group --count --batch_size --streams --timeout_s)");
      System.exit(2);
      return;
    }
    String target = flags.getOrDefault("target", "localhost:50051");
    ManagedChannel channel = channelTo(target);
    int status;
    try {
      // Wait for the sidecar to accept connections, within a deadline.
      long deadline = System.nanoTime()
          + TimeUnit.SECONDS.toNanos(Long.parseLong(flags.getOrDefault("ready_timeout_s", "30")));
      ConnectivityState state = channel.getState(true);
      while (state != ConnectivityState.READY && System.nanoTime() < deadline) {
        CompletableFuture<Void> changed = new CompletableFuture<>();
        channel.notifyWhenStateChanged(state, () -> changed.complete(null));
        try {
          changed.get(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
          break;
        }
        state = channel.getState(true);
      }
      if (state != ConnectivityState.READY) {
        System.err.printf("orders_example: the sidecar at %s did not accept connections in time%n", target);
        status = 1;
      } else {
        status = new OrdersExample(flags, channel).run();
      }
    } catch (java.util.concurrent.ExecutionException e) {
      Status s = Status.fromThrowable(e.getCause());
      System.err.printf("orders_example: the call failed [%s: %s]%n", s.getCode(), s.getDescription());
      status = 1;
    } finally {
      channel.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
    }
    System.exit(status);
  }
}
