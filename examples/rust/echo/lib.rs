//! echo: replies to every message with its content unchanged and operation
//! "response", as examples/echo does. The content is copied straight from
//! the exchange buffer into the reply envelope, in a buffer the SDK reuses:
//! a call allocates nothing.
use edgehost::{Error, Message, Plugin, Reply};

struct Echo;

impl Plugin for Echo {
    fn init(_config: &[u8]) -> Result<Self, Error> {
        Ok(Echo)
    }

    fn handle(&mut self, m: &Message, w: &mut Reply) -> Result<(), Error> {
        w.write(m.content);
        Ok(())
    }
}

edgehost::plugin!(Echo);
