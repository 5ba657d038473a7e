// The Kafka Streams side of the views' differential test (ADR 0016 §13): the same tumbling-window
// aggregation as a Polder view (count, sum, min, max per group), final results only, run in
// Kafka Streams' TopologyTestDriver (no broker; one input partition).
//
//   java -cp <classes>:<kafka-streams libs>/* StreamsWindows <events> <window ms> <grace ms> <out>
//
// <events>: one event per line, "group<TAB>value<TAB>event time ms<TAB>entity", in input order.
// The event time travels in the record value and is read by an event-time extractor, as Polder
// reads the record's event time, not the Kafka timestamp. <out>: one line per final cell,
// "window start ms<TAB>group<TAB>count<TAB>sum<TAB>min<TAB>max", then "dropped<TAB>N" with the
// task metric dropped-records-total (records whose window had closed: Kafka Streams' late
// records). Values are printed with 6 decimals, as the C++ side prints them.
import java.io.BufferedReader;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TestOutputTopic;
import org.apache.kafka.streams.TopologyTestDriver;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Suppressed;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.processor.TimestampExtractor;
import org.apache.kafka.streams.state.Stores;

public final class StreamsWindows {
  /** The event time is the value's first field, as a Polder record carries its own event time. */
  public static final class EventTime implements TimestampExtractor {
    @Override
    public long extract(ConsumerRecord<Object, Object> record, long partitionTime) {
      String v = (String) record.value();
      return Long.parseLong(v.substring(0, v.indexOf('\t')));
    }
  }

  // count, sum, min, max as a tab-separated string (the aggregate's serde is a String serde).
  static String add(String agg, String event) {
    String[] a = agg.split("\t");
    double x = Double.parseDouble(event.substring(event.indexOf('\t') + 1));
    long count = Long.parseLong(a[0]) + 1;
    double sum = Double.parseDouble(a[1]) + x;
    double min = Math.min(Double.parseDouble(a[2]), x);
    double max = Math.max(Double.parseDouble(a[3]), x);
    return count + "\t" + sum + "\t" + min + "\t" + max;
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 4) {
      System.err.println("usage: StreamsWindows <events> <window ms> <grace ms> <out>");
      System.exit(2);
    }
    Duration size = Duration.ofMillis(Long.parseLong(args[1]));
    Duration grace = Duration.ofMillis(Long.parseLong(args[2]));

    StreamsBuilder builder = new StreamsBuilder();
    builder
        .stream("events",
                Consumed.with(Serdes.String(), Serdes.String()).withTimestampExtractor(new EventTime()))
        .groupByKey()
        .windowedBy(TimeWindows.ofSizeAndGrace(size, grace))
        .aggregate(() -> "0\t0\tInfinity\t-Infinity", (key, value, agg) -> add(agg, value),
                   Materialized.<String, String>as(
                           Stores.inMemoryWindowStore("cells", size.plus(grace).multipliedBy(2), size,
                                                      false))
                       .withKeySerde(Serdes.String())
                       .withValueSerde(Serdes.String()))
        .suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded()))
        .toStream((windowed, agg) -> windowed.window().start() + "\t" + windowed.key())
        .to("cells", Produced.with(Serdes.String(), Serdes.String()));

    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, "polder-views-differential");
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "unused:9092");
    props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);

    long events = 0;
    try (TopologyTestDriver driver = new TopologyTestDriver(builder.build(), props);
         BufferedReader in = Files.newBufferedReader(Paths.get(args[0]), StandardCharsets.UTF_8);
         PrintWriter out = new PrintWriter(Files.newBufferedWriter(Paths.get(args[3]),
                                                                   StandardCharsets.UTF_8))) {
      TestInputTopic<String, String> input =
          driver.createInputTopic("events", new StringSerializer(), new StringSerializer());
      TestOutputTopic<String, String> output =
          driver.createOutputTopic("cells", new StringDeserializer(), new StringDeserializer());
      for (String line; (line = in.readLine()) != null;) {
        String[] f = line.split("\t");
        input.pipeInput(f[0], f[2] + "\t" + f[1]);
        ++events;
      }
      for (KeyValue<String, String> kv : output.readKeyValuesToList()) {
        String[] a = kv.value.split("\t");
        out.printf("%s\t%s\t%.6f\t%.6f\t%.6f%n", kv.key, a[0], Double.parseDouble(a[1]),
                   Double.parseDouble(a[2]), Double.parseDouble(a[3]));
      }
      double dropped = 0;
      for (Map.Entry<MetricName, ? extends Metric> m : driver.metrics().entrySet()) {
        if (m.getKey().name().equals("dropped-records-total")) {
          dropped += ((Number) m.getValue().metricValue()).doubleValue();
        }
      }
      out.printf("dropped\t%d%n", (long) dropped);
    }
    System.err.println("StreamsWindows: " + events + " events");
  }
}
