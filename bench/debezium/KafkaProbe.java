// Small Kafka helper for bench/debezium.sh (kafka-clients only, compiled with javac by the script).
//   count BOOTSTRAP TOPIC N TIMEOUT_S
//       waits until the end offsets of TOPIC's partitions sum to >= N (the topic may not exist
//       yet: the connector creates it); prints "<epoch seconds> <sum>" when reached, exits 1 on
//       timeout with the sum seen.
//   tail BOOTSTRAP TOPIC N TIMEOUT_S OUT
//       reads partition 0 of TOPIC from its current end until N records have arrived; writes
//       "<id> <receive time, epoch microseconds>" per record to OUT, id being the record key's
//       single bigint column: Avro in Confluent framing (magic 0, 4-byte schema id, zigzag
//       varint: kappa, and Debezium through the registry) or JSON {"id":N}. Prints the start
//       offset once assigned. The receive time is taken when poll() returns.
import java.io.BufferedWriter;
import java.io.FileWriter;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public final class KafkaProbe {
  private static KafkaConsumer<byte[], byte[]> consumer(String bootstrap) {
    Properties p = new Properties();
    p.put("bootstrap.servers", bootstrap);
    p.put("key.deserializer", ByteArrayDeserializer.class.getName());
    p.put("value.deserializer", ByteArrayDeserializer.class.getName());
    p.put("enable.auto.commit", "false");
    p.put("fetch.min.bytes", "1");
    p.put("fetch.max.wait.ms", "10");
    p.put("allow.auto.create.topics", "false");
    return new KafkaConsumer<>(p);
  }

  private static double now() {
    Instant t = Instant.now();
    return t.getEpochSecond() + t.getNano() / 1e9;
  }

  private static List<TopicPartition> partitions(KafkaConsumer<byte[], byte[]> c, String topic) {
    List<TopicPartition> out = new ArrayList<>();
    Map<String, List<PartitionInfo>> all = c.listTopics(Duration.ofSeconds(5));
    List<PartitionInfo> infos = all.get(topic);
    if (infos != null) {
      for (PartitionInfo i : infos) out.add(new TopicPartition(topic, i.partition()));
    }
    return out;
  }

  private static int count(String bootstrap, String topic, long n, double timeout) throws Exception {
    double deadline = now() + timeout;
    long sum = 0;
    try (KafkaConsumer<byte[], byte[]> c = consumer(bootstrap)) {
      List<TopicPartition> tps = new ArrayList<>();
      while (now() < deadline) {
        if (tps.isEmpty()) {
          tps = partitions(c, topic);
        }
        if (!tps.isEmpty()) {
          sum = 0;
          for (long end : c.endOffsets(tps, Duration.ofSeconds(5)).values()) sum += end;
          if (sum >= n) {
            System.out.printf("%.6f %d%n", now(), sum);
            return 0;
          }
        }
        Thread.sleep(tps.isEmpty() ? 200 : 50);
      }
    }
    System.out.printf("timeout %d%n", sum);
    return 1;
  }

  private static int tail(String bootstrap, String topic, long n, double timeout, String out)
      throws Exception {
    double deadline = now() + timeout;
    long got = 0;
    try (KafkaConsumer<byte[], byte[]> c = consumer(bootstrap);
        BufferedWriter w = new BufferedWriter(new FileWriter(out))) {
      TopicPartition tp = new TopicPartition(topic, 0);
      c.assign(List.of(tp));
      c.seekToEnd(List.of(tp));
      long start = c.position(tp, Duration.ofSeconds(10));
      System.out.println(start);
      System.out.flush();
      while (got < n && now() < deadline) {
        ConsumerRecords<byte[], byte[]> recs = c.poll(Duration.ofMillis(100));
        if (recs.isEmpty()) continue;
        Instant t = Instant.now();
        long us = t.getEpochSecond() * 1_000_000L + t.getNano() / 1000;
        for (ConsumerRecord<byte[], byte[]> r : recs) {
          w.write(keyId(r.key()) + " " + us + "\n");
          got++;
        }
      }
    }
    return got >= n ? 0 : 1;
  }

  private static long keyId(byte[] k) {
    if (k.length > 5 && k[0] == 0) {
      long raw = 0;
      int shift = 0;
      for (int i = 5; i < k.length; i++) {
        raw |= (long) (k[i] & 0x7f) << shift;
        if ((k[i] & 0x80) == 0) break;
        shift += 7;
      }
      return (raw >>> 1) ^ -(raw & 1);
    }
    String json = new String(k, java.nio.charset.StandardCharsets.UTF_8);
    return Long.parseLong(json.replaceAll("[^0-9-]", ""));
  }

  public static void main(String[] a) throws Exception {
    int rc;
    switch (a[0]) {
      case "count":
        rc = count(a[1], a[2], Long.parseLong(a[3]), Double.parseDouble(a[4]));
        break;
      case "tail":
        rc = tail(a[1], a[2], Long.parseLong(a[3]), Double.parseDouble(a[4]), a[5]);
        break;
      default:
        throw new IllegalArgumentException("usage: count|tail ...");
    }
    System.exit(rc);
  }
}
