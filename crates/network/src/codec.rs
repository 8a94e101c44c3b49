//! The request-response wire format: one frame per request or response, a 4-byte
//! big-endian length followed by that many opaque bytes.
//!
//! Guarantee: a frame longer than the configured limit is refused from its length
//! prefix alone, before any of its body is buffered, so a peer cannot make us
//! allocate more than the limit.

use async_trait::async_trait;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::request_response;
use libp2p::StreamProtocol;
use std::io;

/// The length prefix is a u32, so no limit may exceed what it can express.
const _: () = assert!(u32::MAX as u64 >= (1u64 << 31));

#[derive(Clone, Debug)]
pub(crate) struct BytesCodec {
    pub(crate) max_request_bytes: usize,
    pub(crate) max_response_bytes: usize,
}

impl BytesCodec {
    pub(crate) fn new(max_request_bytes: usize, max_response_bytes: usize) -> BytesCodec {
        assert!(u32::try_from(max_request_bytes).is_ok());
        assert!(u32::try_from(max_response_bytes).is_ok());
        BytesCodec {
            max_request_bytes,
            max_response_bytes,
        }
    }
}

pub(crate) async fn read_frame<T>(io: &mut T, limit_bytes: usize) -> io::Result<Vec<u8>>
where
    T: AsyncRead + Unpin + Send,
{
    let mut prefix = [0u8; 4];
    io.read_exact(&mut prefix).await?;
    let length = u32::from_be_bytes(prefix) as usize;
    if length > limit_bytes {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {length} bytes exceeds the limit of {limit_bytes} bytes"),
        ));
    }
    let mut body = vec![0u8; length];
    io.read_exact(&mut body).await?;
    Ok(body)
}

pub(crate) async fn write_frame<T>(io: &mut T, body: &[u8], limit_bytes: usize) -> io::Result<()>
where
    T: AsyncWrite + Unpin + Send,
{
    if body.len() > limit_bytes {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "frame of {} bytes exceeds the limit of {limit_bytes} bytes",
                body.len()
            ),
        ));
    }
    let length = u32::try_from(body.len()).expect("limits fit in u32 (checked in BytesCodec::new)");
    io.write_all(&length.to_be_bytes()).await?;
    io.write_all(body).await?;
    // The request-response handler closes the stream after this returns.
    io.flush().await
}

#[async_trait]
impl request_response::Codec for BytesCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, self.max_request_bytes).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, self.max_response_bytes).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &request, self.max_request_bytes).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &response, self.max_response_bytes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures::io::Cursor;

    #[test]
    fn frames_round_trip() {
        for body in [Vec::new(), vec![7u8], vec![1u8; 1000]] {
            let mut buffer = Cursor::new(Vec::new());
            block_on(write_frame(&mut buffer, &body, 1000)).unwrap();
            assert_eq!(buffer.get_ref().len(), 4 + body.len());
            let mut reader = Cursor::new(buffer.into_inner());
            assert_eq!(block_on(read_frame(&mut reader, 1000)).unwrap(), body);
        }
    }

    #[test]
    fn oversized_frames_are_refused_from_the_prefix() {
        // A prefix claiming 4 GiB with no body: refused before reading (or allocating).
        let mut reader = Cursor::new(u32::MAX.to_be_bytes().to_vec());
        let error = block_on(read_frame(&mut reader, 1024)).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);

        let mut buffer = Cursor::new(Vec::new());
        let error = block_on(write_frame(&mut buffer, &[0u8; 11], 10)).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert!(buffer.get_ref().is_empty());
    }

    #[test]
    fn truncated_frames_are_errors() {
        let mut bytes = 10u32.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[1, 2, 3]);
        let mut reader = Cursor::new(bytes);
        assert!(block_on(read_frame(&mut reader, 100)).is_err());
        let mut reader = Cursor::new(vec![0u8, 0]);
        assert!(block_on(read_frame(&mut reader, 100)).is_err());
    }
}
