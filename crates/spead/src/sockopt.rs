//! Integer socket options that `socket2` does not cover (`SO_RCVBUFFORCE`,
//! `UDP_GRO`, `SO_NO_CHECK`), set through one checked call.

use std::io;
use std::mem;
use std::os::fd::AsRawFd;

/// Sets an `int`-valued socket option.
pub(crate) fn set_int(
    socket: &impl AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: setsockopt reads exactly `size_of::<c_int>()` bytes from a live int.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            &value as *const libc::c_int as *const libc::c_void,
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
