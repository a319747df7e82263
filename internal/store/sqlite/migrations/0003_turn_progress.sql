-- Where a running turn has got to (store.Progress as JSON): its run on the
-- agent server and the messages showing its answer, so that a restart
-- follows the run and finishes the answer in those messages.
ALTER TABLE turns ADD COLUMN progress TEXT;
