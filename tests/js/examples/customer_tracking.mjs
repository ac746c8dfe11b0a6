import io from 'socket.io-client';

const socket = io('http://localhost:3000/customer', {
  auth: { token: accessToken }
});

socket.on('connect', () => {
  // Start tracking booking
  socket.emit('booking:track', bookingId);
});

socket.on('booking:status_updated', (data) => {
  console.log('Status:', data.status);
});

socket.on('partner:location_update', (data) => {
  // Update map with partner location
  updateMap(data.location);
});

socket.on('message:received', (data) => {
  // Show new message
  displayMessage(data);
});
