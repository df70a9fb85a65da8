"""The worker's Faust shell: group membership, recovery and the batch path.

The batch path, in the order a record takes it (docs/architecture.md):

1. ``consumer.BatchConsumer._drain_messages``: fetch (aiokafka via Faust's
   consumer thread), hand each input partition's records to the aligner.
2. ``aligner.Aligner``: hold CDRs until the account-events partition is
   known to be caught up past them, so the two topics merge in time order.
3. ``partition.PartitionRater.handle``: skip what the committed
   applied-offsets marker says is done, merge by timestamp, rate with
   ``rater.core.processor.Processor``.
4. ``batches.RecordBatches``: the batch's changelog records and outputs
   written straight into aiokafka batches of the partition's producer.
5. ``transactions.PartitionTransactions``: one transactional producer per
   owned partition; commit, then ``stability.TransactionAdmin.settle`` waits
   until the commit is stable on every partition written.
6. ``store.RocksStates``: the committed states written to RocksDB with
   the changelog offset they reached; ``health`` counts the batch.

Imports ``rater.core``, ``rater.config``, ``rater.compat`` (every private access to
Faust and aiokafka), ``rater.observability`` and ``rater.web`` (to mount the views);
never ``rater.devkit`` (the local broker, the demo) or ``load``.
"""
