//! sdkcheck: the Rust SDK's surface beyond the examples; see ../README.md.
use edgehost::{Code, Error, Message, Plugin, Reply};
use std::fmt::Write;

struct Check;

fn out<'a>(group: &'a str, operation: &'a str, resource: &'a str, content: &'a [u8]) -> Message<'a> {
    Message { group, operation, resource, content, ..Message::default() }
}

impl Plugin for Check {
    fn init(_config: &[u8]) -> Result<Self, Error> {
        Ok(Check)
    }

    fn tick(&mut self) -> Result<(), Error> {
        edgehost::send(&out("sink", "note", "sdk/tick", b"tick")).map_err(|e| Error::Code(e.code))
    }

    fn handle(&mut self, m: &Message, w: &mut Reply) -> Result<(), Error> {
        match m.operation {
            "request" => {
                let env = edgehost::request(&out("svc", "query", "sdk/q", m.content), 5000)?;
                let r = env.message();
                write!(w, "{} {}", r.operation, r.content.len()).unwrap();
            }
            "send" => {
                edgehost::send(&out("sink", "note", "sdk/s", m.content))?;
                w.write_str("ok");
            }
            "kv" => {
                let text = String::from_utf8_lossy(m.content).into_owned();
                let (k, v) = text.split_once('=').ok_or("kv: want k=v")?;
                edgehost::kv_put(k, v.as_bytes())?;
                let got = edgehost::kv_get(k)?.unwrap_or_default();
                w.write(&got);
                write!(w, "|{}", edgehost::kv_list("")?.join(",")).unwrap();
                edgehost::kv_delete(k)?;
                w.write_str(if edgehost::kv_get(k)?.is_none() { "|absent" } else { "|present" });
            }
            "config" => w.write(&edgehost::config()?),
            "now" => write!(w, "{}", edgehost::now()).unwrap(),
            "log" => {
                edgehost::log(edgehost::Level::Info, &String::from_utf8_lossy(m.content), &[]);
                w.write_str("ok");
            }
            "route" => {
                let mut r = edgehost::route_request(m).map_err(|_| "route: not a request in the framing")?;
                r.headers.push(("X-Via", "rust"));
                let resp = r.forward(5000).map_err(|e| format!("http_request: {}", e.code))?;
                let mut headers: Vec<(&str, &str)> = resp.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                headers.push(("X-Lang", "rust"));
                w.write_http(resp.status, &headers, &resp.body);
            }
            "fail" => return Err(Error::Code(Code::NoHandler)),
            "trap" => panic!("sdkcheck: trap"),
            op => return Err(format!("sdkcheck: unknown operation {}", op).into()),
        }
        Ok(())
    }
}

edgehost::plugin!(Check);
