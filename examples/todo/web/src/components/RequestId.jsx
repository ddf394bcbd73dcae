// RequestId shows the X-Request-Id of the last API call: the key to find it in
// the gateway's access log.
export default function RequestId({ id }) {
  return (
    <p id="last-request" className="meta">
      Last request: <code id="request-id">{id || 'none yet'}</code>
    </p>
  );
}
