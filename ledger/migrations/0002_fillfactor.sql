-- chain_heads and tasks are updated on every batch that touches their task: leave room in each
-- page so that those updates stay on the page (HOT) instead of adding index entries every time.
ALTER TABLE chain_heads SET (fillfactor = 50);
ALTER TABLE tasks SET (fillfactor = 50);
