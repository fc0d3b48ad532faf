"""Produce N records to a topic, or consume M of them in a group and commit. Test helper."""
import sys

from kafka import KafkaConsumer, KafkaProducer

action, bootstrap, topic = sys.argv[1:4]
count = int(sys.argv[4])
if action == "produce":
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for i in range(count):
        producer.send(topic, b"m%d" % i, key=b"k%d" % (i % 7))
    producer.flush()
    producer.close()
else:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=sys.argv[5], enable_auto_commit=False,
                             auto_offset_reset="earliest", max_poll_records=count, consumer_timeout_ms=15000)
    seen = 0
    while seen < count:
        for records in consumer.poll(timeout_ms=1000, max_records=count - seen).values():
            seen += len(records)
    consumer.commit()
    consumer.close()
print(count)
