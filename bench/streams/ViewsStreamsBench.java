// The Kafka Streams baseline of bench/views_bench.cc (docs/BENCHMARKS.md): the same windowed
// aggregation as the benchmark's Polder view set — per municipality, the sum of bicycle counts
// in 15-minute and 1-hour tumbling windows of event time, 5 minutes' grace, final results only —
// with exactly_once_v2 on the same broker, over the same source records (Polder's wire format:
// the Confluent framing around a polder.datasets.mobility.v1.BikeCount, keyed by municipality,
// so no repartition is needed). State in in-memory window stores with changelog topics, as
// Polder keeps its open cells in memory with a changelog.
//
//   java -cp <classes>:<kafka-streams libs>/* ViewsStreamsBench <bootstrap> <source topic>
//        <application id> <state dir> [max.partition.fetch.bytes in MiB; default Kafka's]
//
// Measures from KafkaStreams.start() until the application's committed offsets reach the
// source's end offsets, and the process CPU time over the same span; prints one JSON line:
// {"records": N, "seconds": s, "cpu_seconds": c, "cells": n, "peak_rss_mib": m}.
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KGroupedStream;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Suppressed;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.processor.TimestampExtractor;
import org.apache.kafka.streams.state.Stores;

public final class ViewsStreamsBench {
  /** The fields the aggregation needs, read from the protobuf wire format directly. */
  static final class Reader {
    final byte[] b;
    int pos;

    Reader(byte[] b, int pos) {
      this.b = b;
      this.pos = pos;
    }

    long varint() {
      long v = 0;
      for (int shift = 0; shift < 64; shift += 7) {
        byte x = b[pos++];
        v |= (long) (x & 0x7f) << shift;
        if ((x & 0x80) == 0) return v;
      }
      throw new IllegalArgumentException("varint too long");
    }

    void skip(int wire) {
      switch (wire) {
        case 0: varint(); break;
        case 1: pos += 8; break;
        case 2: {
          int length = (int) varint();  // read before pos is used: `pos += varint()` would not
          pos += length;
          break;
        }
        case 5: pos += 4; break;
        default: throw new IllegalArgumentException("wire type " + wire);
      }
    }
  }

  // Past the Confluent framing: magic byte, 4-byte schema id, message indexes.
  static int payloadStart(byte[] v) {
    if (v.length < 6 || v[0] != 0) throw new IllegalArgumentException("not Confluent-framed");
    Reader r = new Reader(v, 5);
    long n = r.varint();
    for (long i = 0; i < n; ++i) r.varint();
    return r.pos;
  }

  /** BikeCount.event_time (field 2, a Timestamp) in ms. */
  static long eventMillis(byte[] v) {
    Reader r = new Reader(v, payloadStart(v));
    while (r.pos < v.length) {
      long tag = r.varint();
      int field = (int) (tag >>> 3), wire = (int) (tag & 7);
      if (field == 2 && wire == 2) {
        int end = (int) r.varint() + r.pos;
        long seconds = 0, nanos = 0;
        while (r.pos < end) {
          long t = r.varint();
          if ((t >>> 3) == 1) seconds = r.varint();
          else if ((t >>> 3) == 2) nanos = r.varint();
          else r.skip((int) (t & 7));
        }
        return seconds * 1000 + nanos / 1_000_000;
      }
      r.skip(wire);
    }
    throw new IllegalArgumentException("no event_time");
  }

  /** BikeCount.count (field 5). */
  static long count(byte[] v) {
    Reader r = new Reader(v, payloadStart(v));
    while (r.pos < v.length) {
      long tag = r.varint();
      int field = (int) (tag >>> 3), wire = (int) (tag & 7);
      if (field == 5 && wire == 0) return r.varint();
      r.skip(wire);
    }
    return 0;
  }

  /** Bike counts end their counting interval: the window holds the interval's last instant. */
  public static final class EventTime implements TimestampExtractor {
    @Override
    public long extract(ConsumerRecord<Object, Object> record, long partitionTime) {
      return eventMillis((byte[]) record.value()) - 1;
    }
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 4 && args.length != 5) {
      System.err.println(
          "usage: ViewsStreamsBench <bootstrap> <source> <application id> <state dir> [fetch MiB]");
      System.exit(2);
    }
    final String bootstrap = args[0], source = args[1], appId = args[2];
    final AtomicLong cells = new AtomicLong();

    StreamsBuilder builder = new StreamsBuilder();
    KGroupedStream<String, Long> grouped =
        builder
            .stream(source, Consumed.with(Serdes.String(), Serdes.ByteArray())
                                .withTimestampExtractor(new EventTime()))
            .mapValues(ViewsStreamsBench::count)
            .groupByKey(Grouped.with(Serdes.String(), Serdes.Long()));
    Map<String, Duration> views = new HashMap<>();
    views.put("quarter", Duration.ofMinutes(15));
    views.put("hour", Duration.ofHours(1));
    for (Map.Entry<String, Duration> view : views.entrySet()) {
      Duration size = view.getValue(), grace = Duration.ofMinutes(5);
      grouped.windowedBy(TimeWindows.ofSizeAndGrace(size, grace))
          .reduce(Long::sum,
                  Materialized.<String, Long>as(Stores.inMemoryWindowStore(
                          "view-" + view.getKey(), size.plus(grace).multipliedBy(2), size, false))
                      .withKeySerde(Serdes.String())
                      .withValueSerde(Serdes.Long()))
          .suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded()))
          .toStream((w, sum) -> w.window().start() + "/" + w.key())
          .peek((k, v) -> cells.incrementAndGet())
          .to(appId + "-" + view.getKey(), Produced.with(Serdes.String(), Serdes.Long()));
    }

    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
    props.put(StreamsConfig.STATE_DIR_CONFIG, args[3]);
    props.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
    props.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
    // The optional fifth argument: the consumer's max.partition.fetch.bytes in MiB.
    if (args.length == 5) {
      props.put(StreamsConfig.consumerPrefix(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG),
                Integer.parseInt(args[4]) << 20);
    }

    Map<String, Object> adminProps = new HashMap<>();
    adminProps.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    try (Admin admin = Admin.create(adminProps)) {
      Map<TopicPartition, OffsetSpec> latest = new HashMap<>();
      int partitions = admin.describeTopics(java.util.List.of(source)).allTopicNames().get()
                           .get(source).partitions().size();
      for (int p = 0; p < partitions; ++p) latest.put(new TopicPartition(source, p), OffsetSpec.latest());
      Map<TopicPartition, Long> end = new HashMap<>();
      long records = 0;
      for (Map.Entry<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> e :
           admin.listOffsets(latest).all().get().entrySet()) {
        end.put(e.getKey(), e.getValue().offset());
        records += e.getValue().offset();
      }

      com.sun.management.OperatingSystemMXBean os =
          (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
      KafkaStreams streams = new KafkaStreams(builder.build(), props);
      long cpu0 = os.getProcessCpuTime();
      long t0 = System.nanoTime();
      streams.start();
      while (true) {
        Map<TopicPartition, OffsetAndMetadata> committed =
            admin.listConsumerGroupOffsets(appId).partitionsToOffsetAndMetadata().get();
        boolean done = true;
        for (Map.Entry<TopicPartition, Long> e : end.entrySet()) {
          OffsetAndMetadata o = committed.get(e.getKey());
          // Under exactly-once the committed offset may sit one past the last record (a
          // transaction marker); reaching the end offset means everything was processed.
          if (o == null || o.offset() < e.getValue()) done = false;
        }
        if (done) break;
        if (streams.state() == KafkaStreams.State.ERROR) {
          System.err.println("ViewsStreamsBench: the application failed");
          System.exit(1);
        }
        Thread.sleep(20);
      }
      long t1 = System.nanoTime();
      long cpu1 = os.getProcessCpuTime();
      streams.close(Duration.ofSeconds(30));
      // Peak resident set of this JVM (VmHWM), as the benchmark reads it for Polder's side.
      double peakRssMib = -1;
      for (String line : java.nio.file.Files.readAllLines(java.nio.file.Paths.get("/proc/self/status"))) {
        if (line.startsWith("VmHWM:")) {
          peakRssMib = Long.parseLong(line.replaceAll("[^0-9]", "")) / 1024.0;
        }
      }
      System.out.printf(
          "{\"records\": %d, \"seconds\": %.3f, \"cpu_seconds\": %.3f, \"cells\": %d, "
              + "\"peak_rss_mib\": %.1f}%n",
          records, (t1 - t0) / 1e9, (cpu1 - cpu0) / 1e9, cells.get(), peakRssMib);
    }
  }
}
