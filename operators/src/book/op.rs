//! The order-book operators: `split_books` takes book records out of the source
//! batches, `order_books` keeps each symbol's book and quote and writes the `book` and
//! `quotes` rows of every window.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap as HashMap;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::vec::Broadcast;
use timely::dataflow::StreamVec;

use super::l2::{Hooks, L2};
use super::quote::Quote;
use super::tape::Tape;
use super::{BookConfig, BookKind, BookRecord, BookRow, QuoteRow};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpointed, Checkpointing};
use crate::route::symbol_route;
use crate::window::Held;
use crate::{Reject, Symbol, SymbolBatch};

/// The handle of one `Vec<A>` output.
type VecOutput<A> = OutputBuilder<i64, CapacityContainerBuilder<Vec<A>>>;

/// Extension trait: separates book records from trades and candles.
pub trait SplitBooks<'scope> {
    /// Returns the batches with trades or candles (their book records taken out), the
    /// batches of book records, and the greatest event time of any record in the whole
    /// input, broadcast to every worker when the input ends.
    #[allow(clippy::type_complexity)]
    fn split_books(
        self,
    ) -> (
        StreamVec<'scope, i64, SymbolBatch>,
        StreamVec<'scope, i64, SymbolBatch>,
        StreamVec<'scope, i64, i64>,
    );
}

impl<'scope> SplitBooks<'scope> for StreamVec<'scope, i64, SymbolBatch> {
    fn split_books(
        self,
    ) -> (
        StreamVec<'scope, i64, SymbolBatch>,
        StreamVec<'scope, i64, SymbolBatch>,
        StreamVec<'scope, i64, i64>,
    ) {
        let mut builder = OperatorBuilder::new("SplitBooks".to_owned(), self.scope());
        let mut input = builder.new_input(self, Pipeline);
        let (rest_out, rest) = builder.new_output();
        let (books_out, books) = builder.new_output();
        let (last_out, last) = builder.new_output();
        let mut rest_out = VecOutput::<SymbolBatch>::from(rest_out);
        let mut books_out = VecOutput::<SymbolBatch>::from(books_out);
        let mut last_out = VecOutput::<i64>::from(last_out);
        builder.build(move |mut caps| {
            let mut last_cap = caps.pop();
            let mut max_ts = i64::MIN;
            move |frontiers| {
                let (mut rest, mut books) = (rest_out.activate(), books_out.activate());
                input.for_each(|cap, data| {
                    let mut rest = rest.session(&cap);
                    let mut books = books.session(&cap);
                    for mut batch in data.drain(..) {
                        if let Some(t) = batch.max_ts() {
                            max_ts = max_ts.max(t);
                        }
                        if !batch.book.is_empty() {
                            books.give(SymbolBatch {
                                symbol: batch.symbol.clone(),
                                book: std::mem::take(&mut batch.book),
                                ..SymbolBatch::default()
                            });
                        }
                        if !batch.is_empty() {
                            rest.give(batch);
                        }
                    }
                });
                match frontiers[0].frontier().first() {
                    Some(t) => {
                        if let Some(c) = last_cap.as_mut() {
                            if c.time() < t {
                                c.downgrade(t);
                            }
                        }
                    }
                    None => {
                        if let Some(c) = last_cap.take() {
                            if max_ts != i64::MIN {
                                last_out.activate().session(&c).give(max_ts);
                            }
                        }
                    }
                }
            }
        });
        (rest, books, last.broadcast())
    }
}

/// The outputs of [`OrderBooks::order_books`]: `book` rows, `quotes` rows, dead letters.
pub type BookStreams<'scope> = (
    StreamVec<'scope, i64, BookRow>,
    StreamVec<'scope, i64, QuoteRow>,
    StreamVec<'scope, i64, Reject>,
);

/// Extension trait: the `book` and `quotes` sets of a stream of book records.
pub trait OrderBooks<'scope> {
    /// Keeps each symbol's L2 book (from snapshots, diffs and Tardis rows) and quote
    /// (from tickers) and returns `book` rows, `quotes` rows and dead letters
    /// (`sequence_gap`, `crossed_book`). `last_ts` is the greatest event time of the
    /// whole input (from [`SplitBooks::split_books`]): when the input ends, every
    /// series is filled up to the window holding it. With `checkpoint`, the books are
    /// snapshotted at every cut and restored after a restart; a restored book skips the
    /// records it already applied (by their input position), so the source may replay
    /// from any earlier offset.
    fn order_books(
        self,
        last_ts: StreamVec<'scope, i64, i64>,
        config: BookConfig,
        checkpoint: Option<Checkpointing>,
    ) -> BookStreams<'scope>;
}

/// A symbol's book, quote and their series.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Books {
    l2: L2,
    tapes: Vec<Tape>,
    quote: Quote,
    quote_tapes: Vec<Tape>,
    /// The last input position applied per input part (`seq >> 40`: a file or a
    /// partition), so that records replayed after a restart are applied once.
    applied: BTreeMap<u64, u64>,
}

/// The order-book operator as a checkpointed operator.
pub struct OrderBooksOp;

impl Checkpointed for OrderBooksOp {
    const NAME: &'static str = "book";
    type State = Vec<(Symbol, Books)>;
}

/// The book tapes around a change of the L2 book.
struct BookHooks<'a> {
    symbol: &'a Symbol,
    tapes: &'a mut Vec<Tape>,
    rows: &'a mut Vec<BookRow>,
}

impl Hooks for BookHooks<'_> {
    fn before(&mut self, book: &L2, stamp: i64) {
        for t in self.tapes.iter_mut() {
            let (symbol, r, rows) = (self.symbol, t.r, &mut *self.rows);
            t.before(book, stamp, &mut |w| {
                rows.extend(BookRow::at(symbol, r, book, w))
            });
        }
    }

    fn after(&mut self, book: &L2, stamp: i64, update: Option<i128>) {
        for t in self.tapes.iter_mut() {
            t.after(book, stamp, update);
        }
    }
}

impl Books {
    fn new(config: &BookConfig) -> Books {
        let tapes: Vec<Tape> = config.resolutions.iter().map(|&r| Tape::new(r)).collect();
        Books {
            l2: L2::default(),
            quote_tapes: tapes.clone(),
            tapes,
            quote: Quote::default(),
            applied: BTreeMap::new(),
        }
    }

    /// Applies one record (once: a record at or before the last applied position of its
    /// input part is a replay).
    fn apply(&mut self, symbol: &Symbol, r: BookRecord, out: &mut Out) {
        let (part, pos) = (r.seq >> 40, r.seq & ((1 << 40) - 1));
        match self.applied.get_mut(&part) {
            Some(last) if pos <= *last => return,
            Some(last) => *last = pos,
            None => {
                self.applied.insert(part, pos);
            }
        }
        if r.kind == BookKind::Ticker {
            let stamp = self.quote.stamp(&r);
            let (q, rows) = (&mut self.quote, &mut out.quotes);
            for t in self.quote_tapes.iter_mut() {
                let r_ms = t.r;
                t.before(q, stamp, &mut |w| {
                    rows.extend(q.top.map(|top| QuoteRow::at(symbol, r_ms, &top, w)))
                });
            }
            q.apply(symbol, &r, &mut out.rejects);
            for t in self.quote_tapes.iter_mut() {
                t.after(q, stamp, Some(0));
            }
            return;
        }
        let mut hooks = BookHooks {
            symbol,
            tapes: &mut self.tapes,
            rows: &mut out.books,
        };
        self.l2.apply(symbol, r, &mut hooks, &mut out.rejects);
    }

    /// Closes every window ending at or before `to` (book and quote), and moves both
    /// clocks up to it: a record that arrives later (live, behind the watermark) is
    /// stamped no earlier.
    fn advance(&mut self, symbol: &Symbol, to: i64, out: &mut Out) {
        for t in self.tapes.iter_mut() {
            let (b, r, rows) = (&self.l2, t.r, &mut out.books);
            t.advance(b, to, &mut |w| rows.extend(BookRow::at(symbol, r, b, w)));
        }
        for t in self.quote_tapes.iter_mut() {
            let (q, r, rows) = (&self.quote, t.r, &mut out.quotes);
            t.advance(q, to, &mut |w| {
                rows.extend(q.top.map(|top| QuoteRow::at(symbol, r, &top, w)))
            });
        }
        self.l2.time = self.l2.time.max(to);
        self.quote.time = self.quote.time.max(to);
    }

    /// At the end of the input: every series up to the window holding `last_ts`; held
    /// diffs become dead letters.
    fn finish(&mut self, symbol: &Symbol, last_ts: i64, out: &mut Out) {
        for (tapes, quote) in [(&mut self.tapes, false), (&mut self.quote_tapes, true)] {
            for t in tapes.iter_mut() {
                let end = last_ts.div_euclid(t.r) * t.r + t.r;
                let r = t.r;
                if quote {
                    let (q, rows) = (&self.quote, &mut out.quotes);
                    t.advance(q, end, &mut |w| {
                        rows.extend(q.top.map(|top| QuoteRow::at(symbol, r, &top, w)))
                    });
                } else {
                    let (b, rows) = (&self.l2, &mut out.books);
                    t.advance(b, end, &mut |w| rows.extend(BookRow::at(symbol, r, b, w)));
                }
            }
        }
        self.l2.drain_held(symbol, &mut out.rejects);
    }
}

/// Rows and dead letters waiting to be sent.
#[derive(Default)]
struct Out {
    books: Vec<BookRow>,
    quotes: Vec<QuoteRow>,
    rejects: Vec<Reject>,
}

impl<'scope> OrderBooks<'scope> for StreamVec<'scope, i64, SymbolBatch> {
    fn order_books(
        self,
        last_ts: StreamVec<'scope, i64, i64>,
        config: BookConfig,
        checkpoint: Option<Checkpointing>,
    ) -> BookStreams<'scope> {
        let (index, peers) = (self.scope().index(), self.scope().peers());
        let mut builder = OperatorBuilder::new("OrderBooks".to_owned(), self.scope());
        let pact = Exchange::new(|b: &SymbolBatch| symbol_route(&b.symbol));
        let mut input = builder.new_input(self, pact);
        let mut ends = builder.new_input(last_ts, Pipeline);
        let (books_out, books) = builder.new_output();
        let (quotes_out, quotes) = builder.new_output();
        let (rejects_out, rejects) = builder.new_output();
        let mut books_out = VecOutput::<BookRow>::from(books_out);
        let mut quotes_out = VecOutput::<QuoteRow>::from(quotes_out);
        let mut rejects_out = VecOutput::<Reject>::from(rejects_out);
        builder.build(move |caps| {
            let mut held = Held::new(caps);
            let mut pending: BTreeMap<i64, Vec<SymbolBatch>> = BTreeMap::new();
            let mut symbols: HashMap<Symbol, Books> = HashMap::default();
            let mut cp = checkpoint.map(|c| c.checkpointer::<OrderBooksOp>(index, peers));
            if let Some((_, state)) = cp
                .as_ref()
                .and_then(|c| c.restored::<Vec<(Symbol, Books)>>())
            {
                symbols.extend(state);
            }
            let mut last: Option<i64> = None;
            let mut seen = i64::MIN;
            let mut out = Out::default();
            move |frontiers| {
                input.for_each(|cap, data| {
                    if let Some(&t) = cap.least() {
                        pending.entry(t).or_default().append(data);
                    }
                });
                ends.for_each(|_, data| {
                    for t in data.drain(..) {
                        last = Some(last.map_or(t, |l: i64| l.max(t)));
                    }
                });
                let f = frontiers[0].frontier().first().copied().unwrap_or(i64::MAX);
                let ends_done = frontiers[1].frontier().is_empty();
                // Every record at a time before the frontier is here: apply them, time
                // by time, each time's in arrival order.
                while let Some(entry) = pending.first_entry() {
                    if *entry.key() >= f {
                        break;
                    }
                    for batch in entry.remove() {
                        let books = symbols
                            .entry(batch.symbol.clone())
                            .or_insert_with(|| Books::new(&config));
                        for r in batch.book {
                            books.apply(&batch.symbol, r, &mut out);
                        }
                    }
                }
                if f > seen && f != i64::MAX {
                    seen = f;
                    for (symbol, books) in symbols.iter_mut() {
                        books.advance(symbol, f, &mut out);
                    }
                    if let Some(cp) = cp.as_mut() {
                        // Every record before the frontier is applied: the state at a cut.
                        cp.take_due(f, || {
                            let mut state: Vec<(Symbol, Books)> = symbols
                                .iter()
                                .map(|(s, b)| (s.clone(), b.clone()))
                                .collect();
                            state.sort_by(|a, b| a.0.cmp(&b.0));
                            state
                        });
                    }
                }
                let ended = f == i64::MAX && ends_done;
                if ended && held.caps().is_some() {
                    if let Some(last) = last {
                        for (symbol, books) in symbols.iter_mut() {
                            books.finish(symbol, last, &mut out);
                        }
                    }
                    symbols.clear();
                }
                if let Some(caps) = held.caps() {
                    let mut send = |k: usize| match k {
                        0 if !out.books.is_empty() => books_out
                            .activate()
                            .session(&caps[0])
                            .give_iterator(out.books.drain(..)),
                        1 if !out.quotes.is_empty() => quotes_out
                            .activate()
                            .session(&caps[1])
                            .give_iterator(out.quotes.drain(..)),
                        2 if !out.rejects.is_empty() => rejects_out
                            .activate()
                            .session(&caps[2])
                            .give_iterator(out.rejects.drain(..)),
                        _ => {}
                    };
                    for k in 0..3 {
                        send(k);
                    }
                }
                // Once the records are complete, the rows still to come (filled up to
                // the last window of the input) end after `seen`: hold there.
                let upper = if f == i64::MAX { seen } else { f };
                let hold = upper.min(frontiers[1].frontier().first().copied().unwrap_or(i64::MAX));
                if ended {
                    held.advance(i64::MAX);
                } else if hold != i64::MAX {
                    held.advance(hold);
                }
            }
        });
        (books, quotes, rejects)
    }
}
