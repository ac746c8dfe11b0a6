import io from 'socket.io-client';

const socket = io('http://localhost:3000/partner', {
  auth: { token: accessToken }
});

// Update location every 10 seconds
setInterval(() => {
  navigator.geolocation.getCurrentPosition((position) => {
    socket.emit('location:update', {
      latitude: position.coords.latitude,
      longitude: position.coords.longitude
    });
  });
}, 10000);

socket.on('booking:new_request', (booking) => {
  // Show new booking notification
  showNotification(booking);
});
